function __mdl_complete
    set -l tokens (commandline -opc)
    set -l current (commandline -ct)
    set -l found (env COMP_WORDS="$tokens $current" COMP_CWORD=(count $tokens) \
        _MDL_COMPLETE=complete_bash _MDL_COMPLETE_SCRIPT=1 mdl 2>/dev/null)
    if not string length -q -- $found
        __fish_complete_path $current  # mdl knows no values here (a path, say): file names
    else if not string match -q -- "*:none:" $found[1]
        printf '%s\n' $found
    end
end

complete --command mdl --no-files --keep-order --arguments '(__mdl_complete)'
