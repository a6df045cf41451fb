#!/usr/bin/env bash
# Overhead of a trace: requests/s of a real server under wrk, untraced, while `lookout diagnose` traces its PHP
# workers, and after — on Apache prefork + mod_php and on nginx + PHP-FPM (the stack most PHP sites run now).
# ptrace stops every syscall twice: the ratio is why traces are short and bounded.
# Needs root, apache2, libapache2-mod-php, nginx, php-fpm and wrk (apt-get install apache2 libapache2-mod-php
# nginx php-fpm wrk). LOOKOUT=path/to/lookout measures another build (e.g. to compare two commits).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "run as root (tracing www-data workers)"; exit 2; }
for t in apache2 nginx wrk; do command -v $t > /dev/null || { echo "$t is not installed"; exit 2; }; done
fpm=$(ls /usr/sbin/php-fpm* 2> /dev/null | head -1)
[ -n "$fpm" ] || { echo "php-fpm is not installed"; exit 2; }
php=$(ls /usr/lib/apache2/modules/libphp*.so | head -1)
if [ -z "${LOOKOUT:-}" ]; then
  cargo build --release -q
  LOOKOUT=./target/release/lookout
fi
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rps() { wrk -t2 -c8 -d5s "$1" | awk '/Requests\/sec/ {print $2}'; }
dirs=()
stops=()
cleanup() {
  for s in "${stops[@]}"; do eval "$s" || true; done
  for d in "${dirs[@]}"; do rm -rf "$d"; done
}
trap cleanup EXIT

# A fresh site in $d on a free port $p.
site() {
  d=$(mktemp -d); chmod 755 "$d"; mkdir -p "$d"/{www,run,logs,tmp}; chmod 755 "$d/www"
  echo '<?php echo "hello ", date("c"), "\n";' > "$d/www/index.php"
  # The founding mistake on a page of its own: what a diagnosis requests while the rest of the site serves.
  mkdir -p "$d/www/inc"; echo '<?php $currency = "EUR";' > "$d/www/inc/settings.php"
  echo '<?php require_once __DIR__ . "/inc/settings.phpp";' > "$d/www/broken.php"
  chmod -R a+rX "$d/www"
  dirs+=("$d"); p=$(free_port)
}

apache_mod_php() {
  local dir=$1 port=$2
  cat > "$dir/apache2.conf" <<CONF
ServerRoot "$dir"
ServerName 127.0.0.1
PidFile $dir/run/apache2.pid
DefaultRuntimeDir $dir/run
Mutex file:$dir/run default
Listen 127.0.0.1:$port
LoadModule mpm_prefork_module /usr/lib/apache2/modules/mod_mpm_prefork.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
LoadModule dir_module /usr/lib/apache2/modules/mod_dir.so
LoadModule mime_module /usr/lib/apache2/modules/mod_mime.so
LoadModule php_module $php
User www-data
Group www-data
TypesConfig /etc/mime.types
ErrorLog $dir/logs/error.log
CustomLog /dev/null common
DocumentRoot $dir/www
DirectoryIndex index.php
StartServers 8
MinSpareServers 8
MaxSpareServers 16
<FilesMatch "\.php$">
    SetHandler application/x-httpd-php
</FilesMatch>
<Directory $dir/www>
    Require all granted
</Directory>
CONF
  apache2 -d "$dir" -f "$dir/apache2.conf" -k start
  stops+=("apache2 -d '$dir' -f '$dir/apache2.conf' -k stop")
}

# nginx (1 worker) passing .php to a static pool of 8 FPM workers over a unix socket, as in Debian's default site.
nginx_fpm() {
  local dir=$1 port=$2
  cat > "$dir/fpm.conf" <<CONF
[global]
pid = $dir/run/fpm.pid
error_log = $dir/logs/fpm.log
daemonize = yes
[www]
user = www-data
group = www-data
listen = $dir/run/fpm.sock
listen.mode = 0666
pm = static
pm.max_children = 8
CONF
  cat > "$dir/nginx.conf" <<CONF
user www-data;
worker_processes 1;
pid $dir/run/nginx.pid;
error_log $dir/logs/nginx-error.log;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path $dir/tmp/client_body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    server {
        listen 127.0.0.1:$port;
        root $dir/www;
        index index.php;
        location ~ \.php\$ {
            include /etc/nginx/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;
            fastcgi_pass unix:$dir/run/fpm.sock;
        }
    }
}
CONF
  "$fpm" --fpm-config "$dir/fpm.conf" -R
  stops+=("kill \$(cat '$dir/run/fpm.pid')")
  nginx -c "$dir/nginx.conf" -e "$dir/logs/nginx-error.log"
  stops+=("kill \$(cat '$dir/run/nginx.pid')")
}

# measure NAME URL PIDFILE: untraced, traced (a 7 s trace of PIDFILE's process and its children around a 5 s wrk
# run), after.
measure() {
  local name=$1 url=$2 pidfile=$3
  sleep 1
  local untraced traced after
  untraced=$(rps "$url")
  "$LOOKOUT" diagnose --pid "$(cat "$pidfile")" --duration 7s > /dev/null 2>&1 &
  local tracer=$!
  sleep 0.5
  traced=$(rps "$url")
  wait $tracer || true
  after=$(rps "$url")
  printf '%-34s %10.0f %14.0f %16.0f %8.2f\n' "$name" "$untraced" "$traced" "$after" \
    "$(echo "$traced / $untraced" | bc -l)"
}

# diagnosis NAME URL PIDFILE: what one diagnosis as `lookout run` makes it (2 s, requesting the failing page)
# costs the site: requests/s of index.php over 5 s with and without it.
diagnosis() {
  local name=$1 url=$2 pidfile=$3
  sleep 1
  local untraced traced
  untraced=$(rps "$url")
  (sleep 1; "$LOOKOUT" diagnose --pid "$(cat "$pidfile")" --url "${url}broken.php" --duration 2s > "$d/diagnosis.txt" 2>&1) &
  local tracer=$!
  traced=$(rps "$url")
  wait $tracer || true
  printf '%-34s %10.0f %14.0f %16s %8.2f\n' "$name" "$untraced" "$traced" "-" \
    "$(echo "$traced / $untraced" | bc -l)"
  # Under that load the diagnosis still has to be right.
  printf '    %s\n' "$(head -c 150 "$d/diagnosis.txt" | head -1 | sed "s|$d|…|g")…"
  grep -q "traced .* for [0-9.]*s" -i "$d/diagnosis.txt" && grep -i "^Traced" "$d/diagnosis.txt" | sed 's/^/    /'
}

printf '%-34s %10s %14s %16s %8s\n' "requests/s" "untraced" "while traced" "after the trace" "ratio"
site; apache_mod_php "$d" "$p"
measure "Apache prefork + mod_php" "http://127.0.0.1:$p/" "$d/run/apache2.pid"
diagnosis "  5 s with one 2 s diagnosis" "http://127.0.0.1:$p/" "$d/run/apache2.pid"
# One private FPM on the machine at a time: the tests' lock (tests/support/fpm_pool.rs), so a test tracing
# `--process php-fpm8.2` never counts this bench's traffic as its own.
exec 9> "${TMPDIR:-/tmp}/lookout-tests-php-fpm.lock"
flock 9
site; nginx_fpm "$d" "$p"
measure "nginx + PHP-FPM (FPM traced)" "http://127.0.0.1:$p/" "$d/run/fpm.pid"
diagnosis "  5 s with one 2 s diagnosis" "http://127.0.0.1:$p/" "$d/run/fpm.pid"
echo "ratio = while traced / untraced: the fraction of its speed the server keeps during a trace window"
echo "(a diagnosis ends 300 ms after its requests once one failed, so it costs less than its 2 s window)"
