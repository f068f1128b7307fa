#compdef mdl

_mdl_completion() {
  local -a found
  found=(${(f)"$(env COMP_WORDS="${words[1,CURRENT]}" COMP_CWORD=$((CURRENT - 1)) \
    _MDL_COMPLETE=complete_bash _MDL_COMPLETE_SCRIPT=1 mdl 2>/dev/null)"})
  if (( ${#found} == 0 )); then
    _files  # mdl knows no values here (a path, say): file names
  elif [[ ${found[1]} != *":none:" ]]; then
    compadd -V mdl -- "${found[@]}"  # -V: in mdl's order (versions newest first)
  fi
}

compdef _mdl_completion mdl
