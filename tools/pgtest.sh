# Throw-away PostgreSQL 15 servers for tests and benchmarks (sourced by pg-test-cluster.sh and
# ha-failover-test.sh): a primary, optionally a synchronous standby made with pg_basebackup,
# each in a directory of its own, on ports the caller picks. Debian's binaries
# (/usr/lib/postgresql/15/bin, package postgresql-15). PostgreSQL refuses to run as root, so
# as root the servers run as the `postgres` user Debian's package creates (or, if it is
# missing, a dedicated `afpgtest` user made here); as anyone else they run as that user.
#
# Authentication as a real deployment has it: role `agentflow` with a random password
# (scram-sha-256 over TCP) that only the pgpass file written beside the servers holds (it may
# create databases: each test takes a fresh one);
# replication by role `replicator`, also with a password. Optional TLS (`PG_TLS=1`): a
# throw-away CA (ca.crt) and a server certificate for 127.0.0.1, localhost and the listen
# addresses.

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}

# pg_user: who runs the servers.
pg_user() {
    if [ "$(id -u)" != 0 ]; then id -un; return; fi
    if id postgres >/dev/null 2>&1; then echo postgres; return; fi
    id afpgtest >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin afpgtest
    echo afpgtest
}

# as_pg CMD...: runs CMD as the servers' user (runuser when root), in the network namespace
# PG_NS when that is set (ip netns exec needs root, so it comes first).
as_pg() {
    local ns=()
    [ -n "${PG_NS:-}" ] && ns=(ip netns exec "$PG_NS")
    if [ "$(id -u)" = 0 ]; then "${ns[@]}" runuser -u "$(pg_user)" -- "$@"; else "${ns[@]}" "$@"; fi
}

# pg_free_port: a TCP port nothing listens on now, from the kernel's ephemeral range.
pg_free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# pg_check: the binaries are there.
pg_check() {
    [ -x "$PGBIN/postgres" ] && [ -x "$PGBIN/pg_basebackup" ] || {
        echo "[pgtest] PostgreSQL 15 is not installed ($PGBIN): tools/install-deps.sh installs postgresql-15" >&2
        return 1
    }
}

# pg_secret: 24 random alphanumerics.
pg_secret() { head -c 64 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 24; }

# pg_tls ROOT ADDR...: a CA and a server certificate (server.crt/server.key) under ROOT/tls.
pg_tls() {
    local root=$1 san="DNS:localhost,IP:127.0.0.1" a
    shift
    for a in "$@"; do case "$a" in 127.0.0.1|localhost|'*'|0.0.0.0) ;; *) san="$san,IP:$a" ;; esac; done
    mkdir -p "$root/tls"
    (cd "$root/tls" &&
        openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 -subj "/CN=agentflow test CA" 2>/dev/null &&
        openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj "/CN=localhost" 2>/dev/null &&
        printf 'subjectAltName=%s\n' "$san" > san.ext &&
        openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 2 -extfile san.ext 2>/dev/null) || return 1
    chmod 644 "$root/tls/ca.crt" "$root/tls/server.crt"
    chmod 600 "$root/tls/server.key"
}

# pg_primary ROOT PORT LISTEN: initdb in ROOT/primary, configure, start (in the network
# namespace PG_NS if the caller sets it).
# Writes ROOT/pgpass and ROOT/env (PGURL, PGPASSFILE, …).
pg_primary() {
    local root=$1 port=$2 listen=$3 user pw rpw
    pg_check || return 1
    user=$(pg_user)
    mkdir -p "$root/primary"
    chmod 755 "$root"
    [ "$(id -u)" = 0 ] && chown "$user" "$root/primary"
    chmod 700 "$root/primary"
    pw=$(pg_secret)
    rpw=$(pg_secret)
    as_pg "$PGBIN/initdb" -D "$root/primary" -U postgres -A trust --no-sync -E UTF8 --locale C >"$root/initdb.log" 2>&1 || { cat "$root/initdb.log" >&2; return 1; }
    cat >>"$root/primary/postgresql.conf" <<EOF
listen_addresses = '$listen'
port = $port
unix_socket_directories = '$root/primary'
max_connections = 60
shared_buffers = 64MB
wal_level = replica
max_wal_senders = 5
wal_keep_size = 256MB
synchronous_commit = on
fsync = on
log_min_messages = warning
log_line_prefix = '%m [%p] '
# The failover test reads each row's commit time (pg_xact_commit_timestamp) to show a stale
# coordinator epoch committed nothing after the takeover.
track_commit_timestamp = on
EOF
    if [ "${PG_TLS:-0}" = 1 ]; then
        pg_tls "$root" "$listen" || return 1
        cp "$root/tls/server.crt" "$root/tls/server.key" "$root/primary/"
        [ "$(id -u)" = 0 ] && chown "$user" "$root/primary/server.crt" "$root/primary/server.key"
        printf "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n" >>"$root/primary/postgresql.conf"
    fi
    cat >"$root/primary/pg_hba.conf" <<EOF
local all all trust
host replication replicator 0.0.0.0/0 scram-sha-256
host all agentflow 0.0.0.0/0 scram-sha-256
host replication replicator ::/0 scram-sha-256
host all agentflow ::/0 scram-sha-256
EOF
    [ "$(id -u)" = 0 ] && chown "$user" "$root/primary/pg_hba.conf" "$root/primary/postgresql.conf"
    pg_start "$root/primary" || return 1
    as_pg "$PGBIN/psql" -q -h "$root/primary" -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 >/dev/null <<EOF || return 1
SET password_encryption = 'scram-sha-256';
CREATE ROLE agentflow LOGIN CREATEDB PASSWORD '$pw';
CREATE ROLE replicator LOGIN REPLICATION PASSWORD '$rpw';
CREATE DATABASE agentflow OWNER agentflow;
EOF
    umask 077
    printf '*:*:*:agentflow:%s\n*:*:*:replicator:%s\n' "$pw" "$rpw" >"$root/pgpass"
    printf '*:*:*:replicator:%s\n' "$rpw" >"$root/pgpass-replication"
    [ "$(id -u)" = 0 ] && chown "$user" "$root/pgpass-replication"
    umask 022
    {
        echo "PGURL=postgres://agentflow@$( [ "$listen" = '*' ] && echo 127.0.0.1 || echo "${listen%%,*}" ):$port/agentflow"
        echo "PGPASSFILE=$root/pgpass"
        echo "PG_PRIMARY_PORT=$port"
        if [ "${PG_TLS:-0}" = 1 ]; then echo "PG_CA=$root/tls/ca.crt"; fi
    } >"$root/env"
}

# pg_standby ROOT PORT LISTEN PRIMARY_HOST PRIMARY_PORT NAME: a streaming standby in
# ROOT/standby from a base backup of the primary, connecting as application_name NAME; once
# it streams, the primary names it in synchronous_standby_names (set only now: with a name
# and no standby every commit would wait) and waits until it is the synchronous one.
pg_standby() {
    local root=$1 port=$2 listen=$3 phost=$4 pport=$5 name=$6 user
    user=$(pg_user)
    mkdir -p "$root/standby"
    [ "$(id -u)" = 0 ] && chown "$user" "$root/standby"
    chmod 700 "$root/standby"
    as_pg "$PGBIN/pg_basebackup" -d "host=$phost port=$pport user=replicator passfile=$root/pgpass-replication" \
        -D "$root/standby" -X stream -c fast >"$root/basebackup.log" 2>&1 || { cat "$root/basebackup.log" >&2; return 1; }
    # The primary's socket lock file came along (its socket directory is its data directory):
    # a standby on the same port would take it for a running server's.
    rm -f "$root/standby"/.s.PGSQL.*
    as_pg touch "$root/standby/standby.signal"
    cat >>"$root/standby/postgresql.auto.conf" <<EOF
primary_conninfo = 'host=$phost port=$pport user=replicator passfile=$root/pgpass-replication application_name=$name'
EOF
    cat >>"$root/standby/postgresql.conf" <<EOF
listen_addresses = '$listen'
port = $port
unix_socket_directories = '$root/standby'
hot_standby = on
EOF
    [ "$(id -u)" = 0 ] && chown "$user" "$root/standby/postgresql.auto.conf" "$root/standby/postgresql.conf"
    pg_start "$root/standby" || return 1
    echo "PG_STANDBY_PORT=$port" >>"$root/env"
    pg_wait_sync "$root" "$name" async || return 1
    pg_sql "$root/primary" "ALTER SYSTEM SET synchronous_standby_names = '$name'" >/dev/null
    pg_sql "$root/primary" "SELECT pg_reload_conf()" >/dev/null
    pg_wait_sync "$root" "$name" sync || return 1
}

# pg_wait_sync ROOT NAME STATE: waits (30 s at most) until the primary reports NAME
# streaming with sync_state STATE (async, sync).
pg_wait_sync() {
    local root=$1 name=$2 want=$3 i state
    for i in $(seq 1 300); do
        state=$(pg_sql "$root/primary" "SELECT sync_state FROM pg_stat_replication WHERE application_name = '$name' AND state = 'streaming'")
        [ "$state" = "$want" ] && return 0
        sleep 0.1
    done
    echo "[pgtest] the standby $name never streamed from the primary as $want (now: '${state:-}')" >&2
    return 1
}

# pg_sql DATADIR SQL: runs SQL as the superuser over the server's Unix socket (a path: it
# needs no network namespace); prints rows.
pg_sql() {
    local dir=$1 port
    port=$(sed -n 's/^port = \([0-9]*\)$/\1/p' "$dir/postgresql.conf" | tail -n 1)
    as_pg "$PGBIN/psql" -qtA -h "$dir" -p "$port" -U postgres -d postgres -c "$2" 2>/dev/null
}

# pg_start DATADIR: starts the server (in PG_NS if set) and waits until it accepts.
pg_start() {
    # No descriptor of the caller's goes to the server (a caller reading our output to its end would wait for the server).
    as_pg "$PGBIN/pg_ctl" -D "$1" -l "$1/server.log" -w -t 60 start </dev/null >/dev/null 2>&1 || { tail -n 20 "$1/server.log" >&2; return 1; }
}

# pg_stop DATADIR...: immediate shutdown of each server that runs; never fails.
pg_stop() {
    local d
    for d in "$@"; do
        [ -f "$d/postmaster.pid" ] || continue
        as_pg "$PGBIN/pg_ctl" -D "$d" -m immediate -w -t 20 stop >/dev/null 2>&1 || {
            kill -KILL "$(head -n 1 "$d/postmaster.pid")" 2>/dev/null || true
        }
    done
}

# pg_promote ROOT: promotes the standby to primary (pg_ctl promote), waits until it accepts writes.
pg_promote() {
    as_pg "$PGBIN/pg_ctl" -D "$1/standby" -w -t 30 promote >/dev/null
}

# Whoever sources this keeps no descriptor above 2 that it inherited. A test runner can hold
# hundreds of sockets its children inherit (no CLOEXEC): runuser's PAM session fails with
# "Too many open files" past 1,024, and PostgreSQL counts every inherited descriptor against
# max_files_per_process (1,000) — past ~940 it refuses to start ("insufficient file descriptors
# available to start server process", seen in `make test` while ConnectionLimitTests held its
# crowd of connections). 255 is bash's own script descriptor.
pg_close_inherited_fds() {
    local fd
    for fd in /proc/$$/fd/*; do
        fd=${fd##*/}
        case $fd in 0 | 1 | 2 | 255) ;; *) eval "exec $fd>&-" 2>/dev/null || true ;; esac
    done
}
pg_close_inherited_fds
