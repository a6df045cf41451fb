#!/usr/bin/env bash
# Overhead of a trace: requests/s of a real Apache + mod_php under wrk, untraced and while `lookout diagnose`
# traces its prefork pool. ptrace stops every syscall: the ratio is why traces are short and bounded.
# Needs root, apache2, libapache2-mod-php and wrk (apt-get install apache2 libapache2-mod-php wrk).
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" -eq 0 ] || { echo "run as root (tracing www-data workers)"; exit 2; }
for t in apache2 wrk; do command -v $t > /dev/null || { echo "$t is not installed"; exit 2; }; done
php=$(ls /usr/lib/apache2/modules/libphp*.so | head -1)
cargo build --release -q
dir=$(mktemp -d); chmod 755 "$dir"; mkdir -p "$dir"/{www,run,logs}; chmod 755 "$dir/www"
echo '<?php echo "hello ", date("c"), "\n";' > "$dir/www/index.php"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
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
trap 'apache2 -d "$dir" -f "$dir/apache2.conf" -k stop; rm -rf "$dir"' EXIT
sleep 1
url="http://127.0.0.1:$port/"
rps() { wrk -t2 -c8 -d5s "$url" | awk '/Requests\/sec/ {print $2}'; }
untraced=$(rps)
./target/release/lookout diagnose --pid "$(cat "$dir/run/apache2.pid")" --duration 7s > /dev/null 2>&1 &
tracer=$!
sleep 0.5
traced=$(rps)
wait $tracer || true
after=$(rps)
printf '%-28s %12s\n' "Apache + mod_php" "requests/s"
printf '%-28s %12.0f\n' "untraced" "$untraced" "while traced" "$traced" "after the trace" "$after"
printf 'traced / untraced = %.2f (the server runs at this fraction of its speed during a trace window)\n' \
  "$(echo "$traced / $untraced" | bc -l)"
