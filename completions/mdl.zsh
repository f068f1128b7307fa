
#compdef mdl

_mdl_completion() {
  eval $(env _TYPER_COMPLETE_ARGS="${words[1,$CURRENT]}" _MDL_COMPLETE=complete_zsh mdl)
}

compdef _mdl_completion mdl

