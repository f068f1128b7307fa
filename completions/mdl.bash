_mdl_completion() {
    # the line itself, not COMP_WORDS: those are split at ':' and '=' too (sqlite:///x, --alias=x)
    local line=${COMP_LINE:0:COMP_POINT}
    local -a words found
    read -ra words <<<"$line"
    local cword=${#words[@]}
    [[ $line == *[[:space:]] ]] || cword=$((cword - 1))
    mapfile -t found < <(env COMP_WORDS="$line" COMP_CWORD="$cword" \
        _MDL_COMPLETE=complete_bash _MDL_COMPLETE_SCRIPT=1 "$1" 2>/dev/null)
    COMPREPLY=()
    if [[ -z ${found[*]} ]]; then
        compopt -o default  # mdl knows no values here (a path, say): file names
    elif [[ ${found[0]} != *":none:" ]]; then
        COMPREPLY=("${found[@]}")
    fi
    return 0
}

complete -o nosort -F _mdl_completion mdl
