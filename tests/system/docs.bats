#!/usr/bin/env bats
# docs/cli.md is the CLI reference: it must say what --help says.

load helpers
bats_require_minimum_version 1.5.0

@test "docs/cli.md matches lazybox --help for every command" {
	[ -n "${LBX_SRCDIR:-}" ] || skip "LBX_SRCDIR not set (run through meson test)"
	tmp="$BATS_TEST_TMPDIR/src"
	mkdir -p "$tmp/scripts" "$tmp/docs"
	cp "$LBX_SRCDIR/scripts/gen-cli-doc" "$tmp/scripts/"
	"$tmp/scripts/gen-cli-doc" "$LAZYBOX"
	run diff -u "$LBX_SRCDIR/docs/cli.md" "$tmp/docs/cli.md"
	[ "$status" -eq 0 ] || fail "docs/cli.md is stale; run scripts/gen-cli-doc: $output"
}

@test "every command answers --help with exit 0 and a Usage line" {
	# every command lazybox --help lists, and every subcommand of a group
	local cmds=() c sub
	for c in $(lbx --help | awk '/^Commands:/{on=1; next} on && !NF {exit} on {print $1}'); do
		cmds+=("$c")
		for sub in $(lbx "$c" --help | awk '/^Commands:/{on=1; next} on && !NF {exit} on {print $1}'); do
			cmds+=("$c $sub")
		done
	done
	[ "${#cmds[@]}" -gt 20 ] || fail "only ${#cmds[@]} commands listed: ${cmds[*]}"
	for cmd in "${cmds[@]}"; do
		run lbx $cmd --help
		[ "$status" -eq 0 ] || fail "$cmd --help: status $status"
		[[ "${lines[0]}" == "Usage: lazybox $cmd"* ]] || fail "$cmd --help: ${lines[0]}"
	done
}

@test "unknown command and unknown option: one-line error, status 125" {
	run --separate-stderr lbx frobnicate
	[ "$status" -eq 125 ]
	[[ "$stderr" == *frobnicate* ]]
	run --separate-stderr lbx images --bogus
	[ "$status" -eq 125 ]
	[[ "$stderr" == *--bogus* ]]
}
