#!/usr/bin/env bash
# Builds the local stand-ins named in containers/local.env (no registry is needed): a Debian
# bookworm base made by debootstrap from the apt mirror, then Python, PostgreSQL and PgBouncer
# images on it. An image is rebuilt only when its inputs changed (label taskapi.inputs).
set -Eeuo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=containers/local.env
. "$here/local.env"

BASE_IMAGE=taskapi-local/debian:bookworm
SUITE=bookworm
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# Certificate authorities this machine adds to Debian's (a TLS-inspecting egress proxy, say): the
# images trust them too, or pip and uv inside a build cannot reach PyPI from here.
LOCAL_CAS=/usr/local/share/ca-certificates

inputs_of() {  # the label an image was built from, or nothing
    docker image inspect --format '{{ index .Config.Labels "taskapi.inputs" }}' "$1" 2>/dev/null || true
}

rootfs=""
trap 'rm -rf "$rootfs" "$rootfs.log"' EXIT  # a failed debootstrap leaves hundreds of MB

build_base() {
    # A change to this function (the recipe) or to the CAs rebuilds the base, and every image on it.
    local key
    key="debootstrap --variant=minbase $SUITE $MIRROR $(
        { declare -f build_base; cat "$LOCAL_CAS"/*.crt 2>/dev/null; } | sha256sum | cut -c1-16)"
    if [ "$(inputs_of "$BASE_IMAGE")" = "$key" ]; then
        echo "images: $BASE_IMAGE is up to date"
        return
    fi
    if [ "$(id -u)" != 0 ] || ! PATH="$PATH:/usr/sbin:/sbin" command -v debootstrap >/dev/null; then
        echo "images: building $BASE_IMAGE takes debootstrap, as root (\`make images\` as root installs it)" >&2
        exit 1
    fi
    local started=$SECONDS
    replaced+=("$(docker image inspect --format '{{.Id}}' "$BASE_IMAGE" 2>/dev/null || true)")
    rootfs="$(mktemp -d /tmp/taskapi-rootfs.XXXXXX)"
    echo "images: $key"
    debootstrap --variant=minbase "$SUITE" "$rootfs" "$MIRROR" >"$rootfs.log" 2>&1 \
        || { tail -20 "$rootfs.log" >&2; exit 1; }
    chmod 755 "$rootfs"  # mktemp made it 0700: the image's / would shut out every other user
    if compgen -G "$LOCAL_CAS/*.crt" >/dev/null; then
        mkdir -p "$rootfs$LOCAL_CAS" && cp "$LOCAL_CAS"/*.crt "$rootfs$LOCAL_CAS/"
    fi
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -c . | docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["bash"]' --change "LABEL taskapi.inputs=\"$key\"" - "$BASE_IMAGE" >/dev/null
    rm -rf "$rootfs" "$rootfs.log"
    echo "images: built $BASE_IMAGE in $((SECONDS - started)) s"
}

build_on_base() {  # image name, context directory
    local image="$1" context="$here/$2" key old started=$SECONDS
    key="$(docker image inspect --format '{{.Id}}' "$BASE_IMAGE")-$(
        cd "$context" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)"
    if [ "$(inputs_of "$image")" = "$key" ]; then
        echo "images: $image is up to date"
        return
    fi
    old="$(docker image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)"
    docker build --quiet --force-rm --build-arg "BASE=$BASE_IMAGE" --label "taskapi.inputs=$key" \
        --tag "$image" "$context" >/dev/null
    # The image this one replaced, with the layers only it used (nobody else's dangling images).
    [ -z "$old" ] || docker rmi "$old" >/dev/null 2>&1 || true
    echo "images: built $image in $((SECONDS - started)) s"
}

replaced=()
build_base
# The three wait mostly on the mirror and the disk: side by side they take as long as the longest.
pids=()
build_on_base "$TASKAPI_PYTHON_IMAGE" python & pids+=($!)
build_on_base "$TASKAPI_POSTGRES_IMAGE" postgres & pids+=($!)
build_on_base "$TASKAPI_PGBOUNCER_IMAGE" pgbouncer & pids+=($!)
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
# The replaced base goes last, once no image of ours stands on it (one of someone else may).
for image in "${replaced[@]}"; do
    [ -z "$image" ] || docker rmi "$image" >/dev/null 2>&1 || true
done
exit "$failed"
