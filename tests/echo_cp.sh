#!/usr/bin/env bash
# The echo and cp examples, run as their users would: over TCP and files.
# Usage: tests/echo_cp.sh PATH_TO_ECHO PATH_TO_CP
set -u
echo_bin=$1
cp_bin=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"; [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null' EXIT
failed=0

check() { # name, then the command that must succeed
	local name=$1
	shift
	if "$@"; then
		echo "ok   $name"
	else
		echo "FAIL $name"
		failed=1
	fi
}

# Start echo with the given options; sets pid and port.
start_echo() {
	"$echo_bin" --port 0 "$@" >"$dir/out" 2>"$dir/err" &
	pid=$!
	for _ in $(seq 100); do
		port=$(sed -n 's/^listening on .*:\([0-9]*\)$/\1/p' "$dir/out")
		[ -n "$port" ] && return 0
		sleep 0.05
	done
	echo "echo did not start: $(cat "$dir/err")"
	return 1
}

stop_echo() {
	kill -TERM "$pid"
	wait "$pid"
	local status=$?
	pid=
	return $status
}

# 1 MiB through one connection, and ten lines through ten at once.
echoes_bytes() {
	head -c 1048576 /dev/urandom >"$dir/in"
	exec 3<>"/dev/tcp/127.0.0.1/$port" || return 1
	cat "$dir/in" >&3 &
	head -c 1048576 <&3 >"$dir/back"
	wait $!
	exec 3>&-
	if ! cmp "$dir/in" "$dir/back"; then
		echo "$(wc -c <"$dir/back") bytes came back; the server said:"
		cat "$dir/err"
		return 1
	fi
	for i in $(seq 10); do
		(exec 4<>"/dev/tcp/127.0.0.1/$port" && echo "line $i" >&4 &&
		 read -r line <&4 && [ "$line" = "line $i" ]) && continue
		echo "line $i did not come back; the server said:"
		cat "$dir/err"
		return 1
	done
}

for mode in "" --multishot --deadline; do
	check "echo $mode starts" start_echo $mode || continue
	check "echo $mode echoes byte-exact" echoes_bytes
	check "echo $mode exits 0 on SIGTERM" stop_echo
done

check "echo --help exits 0" "$echo_bin" --help >/dev/null
"$echo_bin" --bogus >/dev/null 2>&1
check "echo rejects an unknown option with 2" test $? -eq 2
start_echo
"$echo_bin" --port "$port" >/dev/null 2>"$dir/err2"
status=$?
check "echo on a port in use exits 1" test $status -eq 1
check "echo says why it cannot start" grep -q "cannot listen" "$dir/err2"
stop_echo

# cp: sizes around the chunk size, several depths, the mode kept.
for size in 0 1 4095 131072 131073 5000000; do
	head -c $size /dev/urandom >"$dir/src"
	chmod 640 "$dir/src"
	for depth in 1 3 64; do
		rm -f "$dir/dst"
		check "cp $size bytes at depth $depth" \
			"$cp_bin" "$dir/src" "$dir/dst" --depth $depth --chunk 4096
		check "cp $size bytes at depth $depth is byte-exact" \
			cmp -s "$dir/src" "$dir/dst"
	done
done
check "cp keeps the mode" test "$(stat -c %a "$dir/dst")" = 640
"$cp_bin" "$dir/missing" "$dir/x" 2>"$dir/err3"
check "cp of a missing file exits 1" test $? -eq 1
check "cp names the missing file" grep -q "missing" "$dir/err3"
"$cp_bin" "$dir/src" "$dir/no/such/dir" 2>/dev/null
check "cp into a missing directory exits 1" test $? -eq 1
"$cp_bin" "$dir/src" "$dir/dst" --depth 0 2>/dev/null
check "cp rejects depth 0 with 2" test $? -eq 2
check "cp --help exits 0" "$cp_bin" --help >/dev/null

exit $failed
