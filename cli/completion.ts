// `xl completion bash|zsh`: a script for the shell to source, completing commands, flags and plan
// files. Generated from one table so the completion cannot drift from the commands.

export const COMMANDS: Record<string, { flags: string[]; files?: boolean }> = {
  up: { flags: [] },
  run: { flags: ['--watch', '--json', '--endpoint'], files: true },
  validate: { flags: ['--json'], files: true },
  status: { flags: ['--json', '--endpoint'] },
  logs: { flags: ['--follow', '--json', '--endpoint'] },
  cancel: { flags: ['--json', '--endpoint'] },
  redrive: { flags: ['--watch', '--json', '--endpoint'] },
  artifact: { flags: ['--out', '--json', '--endpoint'] },
  'dead-letters': { flags: ['--redrive', '--queue', '--json', '--endpoint'] },
  events: { flags: ['--follow', '--kind', '--json', '--endpoint'] },
  agents: { flags: ['--json', '--endpoint'] },
  pool: { flags: ['--report', '--target', '--json', '--endpoint'] },
  health: { flags: ['--json', '--endpoint'] },
  breakers: { flags: ['--json', '--endpoint'] },
  console: { flags: ['--endpoint'] },
  completion: { flags: [] },
};

export function completionScript(shell: string): string {
  const names = Object.keys(COMMANDS).join(' ');
  const cases = Object.entries(COMMANDS)
    .map(([name, c]) => `    ${name}) flags="${c.flags.join(' ')}"; files=${c.files ? 1 : 0} ;;`)
    .join('\n');
  if (shell === 'bash') {
    return `# xl completion for bash: source <(xl completion bash)
_xl() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" cmd="\${COMP_WORDS[1]}" flags="" files=0
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W "${names} --help" -- "$cur"))
    return
  fi
  case "$cmd" in
${cases}
  esac
  if [ "$cmd" = completion ]; then COMPREPLY=($(compgen -W "bash zsh" -- "$cur")); return; fi
  if [[ "$cur" == -* ]]; then COMPREPLY=($(compgen -W "$flags" -- "$cur")); return; fi
  if [ "$files" = 1 ]; then COMPREPLY=($(compgen -f -X '!*.@(json|yaml|yml)' -- "$cur") $(compgen -d -- "$cur")); fi
}
shopt -s extglob
complete -o filenames -F _xl xl
`;
  }
  if (shell === 'zsh') {
    return `#compdef xl
# xl completion for zsh: source <(xl completion zsh), or save as _xl in a directory of $fpath
_xl() {
  local flags="" files=0 cmd="\${words[2]}"
  if (( CURRENT == 2 )); then
    compadd -- ${names} --help
    return
  fi
  case "$cmd" in
${cases}
  esac
  if [[ "$cmd" == completion ]]; then compadd -- bash zsh; return; fi
  if [[ "$PREFIX" == -* ]]; then compadd -- \${=flags}; return; fi
  if (( files )); then _files -g '*.(json|yaml|yml)'; fi
}
if [[ "$funcstack[1]" == _xl ]]; then _xl "$@"; else compdef _xl xl; fi
`;
  }
  throw new Error(`xl completion takes bash or zsh, not "${shell}"`);
}
