#!/usr/bin/env bash
# Writes pgbouncer.ini and userlist.txt from the environment, as edoburu/pgbouncer does, unless a
# pgbouncer.ini was mounted. Covers DB_HOST, DB_PORT, DB_NAME, DB_USER, DB_PASSWORD, AUTH_TYPE,
# POOL_MODE, DEFAULT_POOL_SIZE, MAX_CLIENT_CONN, IGNORE_STARTUP_PARAMETERS, LISTEN_ADDR, LISTEN_PORT.
set -Eeuo pipefail
config=/etc/pgbouncer

if [ ! -f "$config/pgbouncer.ini" ]; then
    : "${DB_HOST:?set DB_HOST, the PostgreSQL server to pool}"
    if [ -n "${DB_USER:-}" ] && [ -n "${DB_PASSWORD:-}" ]; then
        # SCRAM needs the password itself (or its SCRAM secret); md5 takes the md5 hash.
        case "${AUTH_TYPE:-md5}" in
            plain | scram-sha-256) secret="$DB_PASSWORD" ;;
            *) secret="md5$(printf '%s%s' "$DB_PASSWORD" "$DB_USER" | md5sum | cut -d' ' -f1)" ;;
        esac
        printf '"%s" "%s"\n' "$DB_USER" "$secret" > "$config/userlist.txt"
    else
        : > "$config/userlist.txt"
    fi
    {
        echo '[databases]'
        echo "${DB_NAME:-*} = host=$DB_HOST port=${DB_PORT:-5432}"
        echo
        echo '[pgbouncer]'
        echo "listen_addr = ${LISTEN_ADDR:-0.0.0.0}"
        echo "listen_port = ${LISTEN_PORT:-5432}"
        echo "unix_socket_dir = /var/run/postgresql"
        echo "auth_file = $config/userlist.txt"
        echo "auth_type = ${AUTH_TYPE:-md5}"
        echo "pool_mode = ${POOL_MODE:-session}"
        echo "default_pool_size = ${DEFAULT_POOL_SIZE:-20}"
        echo "max_client_conn = ${MAX_CLIENT_CONN:-100}"
        echo "ignore_startup_parameters = ${IGNORE_STARTUP_PARAMETERS:-extra_float_digits}"
        echo "admin_users = ${ADMIN_USERS:-postgres}"
    } > "$config/pgbouncer.ini"
    echo "wrote $config/pgbouncer.ini from the environment"
fi

exec "$@"
