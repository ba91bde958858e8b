#!/usr/bin/env bash
# Checks examples/httpd from the outside: curl, and raw requests written
# over bash's /dev/tcp (no nc or python needed). Prints TAP, one line per
# check, and exits non-zero if any failed. Takes about 5 s.
#
#	tests/httpd.sh PATH_TO_HTTPD
set -u

httpd=${1:?usage: $0 PATH_TO_HTTPD}
tmp=$(mktemp -d)
pids=()
n=0
failed=0

cleanup() {
	local p
	for p in "${pids[@]}"; do
		kill -KILL "$p" 2>/dev/null
	done
	rm -rf "$tmp"
}
trap cleanup EXIT
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY

# check NAME COMMAND...: one TAP line, from the command's exit status.
check() {
	local name=$1 out
	shift
	n=$((n + 1))
	if out=$("$@" 2>&1); then
		echo "ok $n - $name"
	else
		echo "not ok $n - $name"
		printf '%s\n' "$out" | head -n 20 | sed 's/^/#   /'
		failed=$((failed + 1))
	fi
}

# start NAME ARGS...: httpd on a port of the kernel's choice; sets $port,
# $pid and $base.
start() {
	local name=$1 i
	shift
	"$httpd" --port 0 "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" &
	pid=$!
	pids+=("$pid")
	for i in $(seq 50); do
		port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' \
		       "$tmp/$name.out")
		base=http://127.0.0.1:$port
		[ -n "$port" ] && return 0
		sleep 0.1
	done
	echo "Bail out! httpd $name did not say where it listens"
	cat "$tmp/$name.err"
	exit 1
}

# stop: SIGTERM httpd, in this shell (only it can wait for it); sets $rc.
stop() {
	kill -TERM "$pid"
	wait "$pid"
	rc=$?
}

get() {
	curl -sS --max-time 5 --noproxy '*' "$@"
}

status() {
	get -o /dev/null -w '%{http_code}' "$@"
}

is() {
	[ "$1" = "$2" ] || { echo "got '$1', want '$2'"; return 1; }
}

has() {
	case $1 in
	*"$2"*) ;;
	*) echo "no '$2' in: $1"; return 1 ;;
	esac
}

# has_in_order TEXT PATTERN...
has_in_order() {
	local text=$1 pat
	shift
	for pat in "$@"; do
		has "$text" "$pat" || return 1
		text=${text#*"$pat"}
	done
}

# raw TEXT: send TEXT (printf %b escapes) in one write on a new connection;
# print all the server sends, and fail unless it closes within 3 s.
raw() {
	local ret
	exec 3<>"/dev/tcp/127.0.0.1/$port" || return 1
	printf '%b' "$1" >&3
	timeout 3 cat <&3
	ret=$?
	exec 3<&-
	return $ret
}

# closes TEXT PATTERN...: the answers to TEXT hold the patterns, in
# order, and the server closes the connection after them.
closes() {
	local out
	out=$(raw "$1") || { echo "not closed"; return 1; }
	shift
	has_in_order "$out" "$@"
}

# ---- command line

# usage_error WANT ARGS...: httpd exits 2, and stderr says WANT.
usage_error() {
	local want=$1 err
	shift
	err=$("$httpd" "$@" 2>&1 >/dev/null)
	is $? 2 && has "$err" "$want"
}

help_ok() {
	"$httpd" --help | grep -q '^usage: httpd --port N'
}

check "--help exits 0 with usage" help_ok
check "unknown option exits 2" usage_error "unrecognized option" --bogus
check "bad port exits 2" usage_error "bad --port: 70000" --port 70000
check "missing port exits 2" usage_error "--port is required" --root /
check "bad timeout exits 2" usage_error "bad --timeout: 0" --port 1 --timeout 0
check "missing root exits 2" usage_error "--root /nonexistent: No such file" \
	--port 1 --root /nonexistent

# ---- the fixed page

reuses() {
	get -v "$base/" "$base/" 2>&1 | grep -q "Re-using existing connection"
}

head_has_no_body() {
	local out
	out=$(raw 'HEAD / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n' |
	      od -An -c | tr -d ' \n')
	case $out in
	*Content-Length:16*'\r\n\r\n') ;;
	*) echo "not a head ending the stream: $out"; return 1 ;;
	esac
}

# dates TEXT: the Date lines of the answers in TEXT, as seconds since 1970.
dates() {
	printf '%s\n' "$1" | tr -d '\r' | sed -n 's/^Date: //p' |
		while read -r d; do date -d "$d" +%s; done
}

# The cached answer to a keep-alive GET / carries the current date, and a
# new one once the second has changed.
fixed_answer_dated() {
	local two='GET / HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n'
	local before first later n
	before=$(date +%s)
	first=$(dates "$(raw "$two")") || return 1
	is "$(printf '%s\n' "$first" | wc -l)" 2 || return 1
	# httpd reads the wall clock at most every 50 ms: its second may be
	# the one before ours.
	for n in $first; do
		[ "$n" -ge $((before - 1)) ] && [ "$n" -le $((before + 5)) ] ||
			{ echo "Date $n, now $before"; return 1; }
	done
	sleep 1.1
	later=$(dates "$(raw "$two")" | head -n 1)
	[ "$later" -gt "$(printf '%s\n' "$first" | head -n 1)" ] ||
		{ echo "Date not renewed: $first then $later"; return 1; }
}

big_header() {
	local h
	h=$(head -c 16384 /dev/zero | tr '\0' a)
	is "$(status -H "X-Big: $h" "$base/")" 431
}

many_headers() {
	local args=() i v
	for i in $(seq 200); do
		printf -v v '%080d' "$i"
		args+=(-H "X-Header-$i: $v")
	done
	is "$(status "${args[@]}" "$base/")" 431
}

port_in_use() {
	local err
	err=$(timeout 3 "$httpd" --port "$port" 2>&1 >/dev/null) &&
		{ echo "exit status 0"; return 1; }
	has "$err" "Address already in use"
}

quiet() {
	[ ! -s "$1" ] || { cat "$1"; return 1; }
}

start plain
check "GET / is 200" is "$(status "$base/")" 200
check "GET / body" is "$(get "$base/")" "hello from coil"
check "keep-alive answers carry the current Date, renewed" fixed_answer_dated
check "GET /?query is the same page" is "$(get "$base/?a=1")" "hello from coil"
check "keep-alive reuses the connection" reuses
check "pipelined requests answered in order" closes \
	'GET / HTTP/1.1\r\nHost: t\r\n\r\nGET /x HTTP/1.1\r\nHost: t\r\n\r\nHEAD / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n' \
	"200 OK" "hello from coil" "404 Not Found" "200 OK" "Connection: close"
check "HEAD has no body" head_has_no_body
check "HTTP/1.0 closes after the answer" \
	closes 'GET / HTTP/1.0\r\n\r\n' "hello from coil"
check "HTTP/1.0 keep-alive is honoured" closes \
	'GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\n\r\n' \
	"Connection: keep-alive" "hello from coil" "hello from coil"
check "Connection: close closes" \
	closes 'GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n' "200 OK"
check "junk is 400 and closes" closes 'junk\r\n\r\n' "400 Bad Request"
check "no version is 400" closes 'GET /\r\n\r\n' "400 Bad Request"
check "bad header line is 400" \
	closes 'GET / HTTP/1.1\r\nHost: t\r\nnocolon\r\n\r\n' "400 Bad Request"
check "HTTP/1.1 without Host is 400" \
	closes 'GET / HTTP/1.1\r\n\r\n' "400 Bad Request"
check "HTTP/2.0 is 505" closes 'GET / HTTP/2.0\r\n\r\n' "505 HTTP Version"
check "16 KiB header is 431" big_header
check "200 headers (16 KiB) are 431" many_headers
check "unknown path is 404" is "$(status "$base/nope")" 404
check "POST is 405" is "$(status -X POST -d x "$base/")" 405
check "DELETE is 405" is "$(status -X DELETE "$base/")" 405
check "still serving after all that" is "$(get "$base/")" "hello from coil"
check "port in use exits non-zero with a message" port_in_use
# An idle keep-alive connection must not hold up the shutdown.
exec 4<>"/dev/tcp/127.0.0.1/$port"
stop
exec 4<&-
check "SIGTERM exits 0 with a client connected" is "$rc" 0
check "and says nothing on stderr" quiet "$tmp/plain.err"

# ---- files

root=$tmp/root
mkdir -p "$root/sub" "$root/dir"
echo "secret" >"$tmp/secret"
echo "<h1>index</h1>" >"$root/index.html"
echo "sub index" >"$root/sub/index.html"
head -c 300000 /dev/urandom >"$root/big.bin"
echo "a file" >"$root/dir/a b.txt"
ln -s "$tmp/secret" "$root/out"
ln -s /etc/passwd "$root/passwd"
ln -s ../big.bin "$root/sub/in"
mkfifo "$root/fifo"

# same URL FILE: the body is FILE, byte for byte.
same() {
	get "$1" | cmp - "$2"
}

# refused PATH: 403 or 404, sent as is (curl would resolve ".."), and
# nothing from outside the root in the body.
refused() {
	local code
	code=$(get --path-as-is -o "$tmp/body" -w '%{http_code}' "$base$1") ||
		return 1
	case $code in
	403 | 404) ;;
	*) echo "status $code"; return 1 ;;
	esac
	! grep -q -e secret -e root: "$tmp/body"
}

ms() {
	echo $(($(date +%s%N) / 1000000))
}

# Two connections, one silent and one sending half a head, are closed
# after --timeout 1: not before it.
idle_closed() {
	local t0 ret3 ret5 t
	exec 3<>"/dev/tcp/127.0.0.1/$port" 5<>"/dev/tcp/127.0.0.1/$port" ||
		return 1
	t0=$(ms)
	printf 'GET / HTTP/1.1\r\nHost' >&5
	timeout 4 cat <&3 >/dev/null
	ret3=$?
	timeout 4 cat <&5 >/dev/null
	ret5=$?
	t=$(($(ms) - t0))
	exec 3<&- 5<&-
	is "$ret3 $ret5" "0 0" || { echo "still open"; return 1; }
	[ $t -ge 900 ] || { echo "closed after $t ms"; return 1; }
}

start files --root "$root" --timeout 1
check "a file is served byte-exact" same "$base/big.bin" "$root/big.bin"
check "/ serves index.html" is "$(get "$base/")" "<h1>index</h1>"
check "a directory serves its index.html" is "$(get "$base/sub/")" "sub index"
check "a directory without index is 403" is "$(status "$base/dir/")" 403
check "percent-decoded name" is "$(get "$base/dir/a%20b.txt")" "a file"
check "a symlink inside the root is followed" \
	same "$base/sub/in" "$root/big.bin"
check "HEAD of a file gives its length" \
	has "$(get -I "$base/big.bin")" "Content-Length: 300000"
check "missing file is 404" is "$(status "$base/none")" 404
for path in /../secret /%2e%2e/secret /..%2fsecret /../etc/passwd \
	    /%2e%2e/etc/passwd /sub/../../secret /%2fetc/passwd /out /passwd \
	    /fifo; do
	check "$path is not served" refused "$path"
done
check "%00 is 400" is "$(status "$base/index.html%00")" 400
check "idle connections are closed after --timeout" idle_closed
rm "$root/index.html"
check "/ without index.html is the fixed page" \
	is "$(get "$base/")" "hello from coil"
stop
check "SIGTERM exits 0" is "$rc" 0
check "and says nothing on stderr" quiet "$tmp/files.err"

echo "1..$n"
[ "$failed" -eq 0 ]
