#!/usr/bin/env bash
# examples/httpd against nginx (one worker, a fixed answer), both loaded by
# wrk -t1 -c64 on another CPU, in interleaved rounds; the medians and their
# ratio. Usage: bench/httpd.sh PATH_TO_HTTPD [--full]
set -u
httpd=$1
rounds=3
secs=3
[ "${2:-}" = --full ] && rounds=7 && secs=5

for tool in wrk nginx taskset; do
	if ! command -v $tool >/dev/null; then
		echo "httpd: $tool is missing (tools/install-deps bench); skipped"
		exit 0
	fi
done
dir=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill $pid 2>/dev/null; rm -rf "$dir"' EXIT

# A port nobody listens on.
free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 10000))
		(exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null || { echo $p; return; }
	done
}

wait_listening() {
	for _ in $(seq 100); do
		(exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}

start_coil() {
	port=$(free_port)
	taskset -c 0 "$httpd" --port "$port" >/dev/null 2>"$dir/coil.err" &
	pid=$!
}

start_nginx() {
	port=$(free_port)
	mkdir -p "$dir/nginx"
	cat >"$dir/nginx/nginx.conf" <<CONF
daemon off;
master_process off;
worker_processes 1;
pid $dir/nginx/nginx.pid;
error_log $dir/nginx/error.log;
events { worker_connections 1024; }
http {
	access_log off;
	client_body_temp_path $dir/nginx;
	proxy_temp_path $dir/nginx;
	fastcgi_temp_path $dir/nginx;
	uwsgi_temp_path $dir/nginx;
	scgi_temp_path $dir/nginx;
	server {
		listen 127.0.0.1:$port;
		location / { default_type text/plain; return 200 "hello from nginx\n"; }
	}
}
CONF
	taskset -c 0 nginx -p "$dir/nginx" -c "$dir/nginx/nginx.conf" 2>"$dir/nginx.err" &
	pid=$!
}

# Requests per second of one wrk run against the server on $port.
load() {
	taskset -c 1 wrk -t1 -c64 -d${secs}s "http://127.0.0.1:$port/" 2>&1 |
		awk '/^Requests\/sec:/ { printf "%d\n", $2 }'
}

median() {
	sort -n | awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }'
}

status=0
for r in $(seq $rounds); do
	order="coil nginx"
	[ $((r % 2)) -eq 0 ] && order="nginx coil"
	for server in $order; do
		start_$server
		if ! wait_listening "$port"; then
			echo "httpd: $server did not start: $(cat "$dir/$server.err")"
			status=1
		else
			load >>"$dir/$server.rps"
		fi
		kill $pid 2>/dev/null
		wait $pid 2>/dev/null
		pid=
	done
done

coil=$(median <"$dir/coil.rps" 2>/dev/null)
nginx=$(median <"$dir/nginx.rps" 2>/dev/null)
[ -n "$coil" ] && echo "RESULT httpd_coil_rps $coil req/s"
[ -n "$nginx" ] && echo "RESULT httpd_nginx_rps $nginx req/s"
if [ -n "$coil" ] && [ -n "$nginx" ] && [ "$nginx" -gt 0 ]; then
	ratio=$(awk -v a="$coil" -v b="$nginx" 'BEGIN { printf "%.3f", a / b }')
	echo "RESULT httpd_coil_vs_nginx $ratio ratio"
	met=$(awk -v r="$ratio" 'BEGIN { print (r >= 1.0) ? "met" : "NOT met" }')
	echo "target httpd_coil_vs_nginx >= 1.0: $met"
fi
exit $status
