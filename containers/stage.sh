#!/usr/bin/env bash
# The container stage of `make test`: the production image, the compose stack, and the integration
# and e2e suites on a throwaway PostgreSQL container (testcontainers). Where no Docker engine can
# be had, it says so and leaves the stage out (CI, with TASKAPI_REQUIRE_ALL=1, fails instead).
#
# TASKAPI_IMAGES=auto (default) pulls the official images (containers/official.env), or builds
# the local stand-ins of containers/local.env when no registry answers; =official or =local forces
# one of them.
set -Eeuo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
# Everything this run starts carries this id (compose project names, a testcontainers label), so
# that the cleanup removes this run's containers and nobody else's.
TASKAPI_TEST_RUN="$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')"
export TASKAPI_TEST_RUN
logs="$(mktemp -d /tmp/taskapi-containers.XXXXXX)"
started_engine=""
timings=()

step() {  # name, command...: run it and keep how long it took
    local name="$1" started=$SECONDS
    shift
    "$@"
    timings+=("$(printf '%4d s  %s' $((SECONDS - started)) "$name")")
}

leave_out() {
    echo "== containers: stage left out: $1 =="
    if [ "${TASKAPI_REQUIRE_ALL:-0}" = 1 ]; then
        echo "TASKAPI_REQUIRE_ALL=1 requires the container stage" >&2
        exit 1
    fi
    exit 0
}

ours() {  # IDs of this run's compose resources: container, network or volume
    local list=(docker "$1" ls) id='{{.ID}}'
    [ "$1" = container ] && list+=(--all)
    [ "$1" = volume ] && id='{{.Name}}'  # volumes have no ID
    "${list[@]}" --format "$id"' {{.Label "com.docker.compose.project"}}' 2>/dev/null \
        | awk -v prefix="taskapi-test-$TASKAPI_TEST_RUN" 'index($2, prefix) == 1 { print $1 }'
}

cleanup() {
    local status=$?
    set +e  # remove all that can be removed, whatever fails on the way
    if docker info >/dev/null 2>&1; then
        { docker ps -aq --filter "label=taskapi.test-run=$TASKAPI_TEST_RUN"; ours container; } \
            | xargs -r docker rm --force --volumes >/dev/null
        ours network | xargs -r docker network rm >/dev/null
        ours volume | xargs -r docker volume rm >/dev/null
    fi
    if [ -n "$started_engine" ]; then
        kill "$started_engine" 2>/dev/null
        for _ in $(seq 1 40); do kill -0 "$started_engine" 2>/dev/null || break; sleep 0.5; done
    fi
    rm -rf "$logs"
    if [ ${#timings[@]} -gt 0 ]; then
        echo "== containers: timings =="
        printf '%s\n' "${timings[@]}"
    fi
    exit "$status"
}
trap cleanup EXIT

start_engine() {
    local log=/var/log/taskapi-dockerd.log
    echo "== containers: starting dockerd ${DOCKERD_ARGS:---storage-driver=vfs} (log: $log) =="
    # Its own session: a Ctrl-C meant for the tests must not stop the engine before the cleanup.
    # shellcheck disable=SC2086  # a list of flags
    setsid dockerd ${DOCKERD_ARGS:---storage-driver=vfs} >"$log" 2>&1 &
    started_engine=$!
    for _ in $(seq 1 60); do
        docker info >/dev/null 2>&1 && return
        kill -0 "$started_engine" 2>/dev/null || break
        sleep 0.5
    done
    tail -20 "$log" >&2
    started_engine=""
    leave_out "dockerd did not start (see $log)"
}

choose_images() {
    local mode="${TASKAPI_IMAGES:-auto}" image
    set -a
    # shellcheck source=containers/official.env
    . containers/official.env
    set +a
    if [ "$mode" != local ]; then
        for image in "$TASKAPI_PYTHON_IMAGE" "$TASKAPI_POSTGRES_IMAGE" "$TASKAPI_PGBOUNCER_IMAGE"; do
            if ! docker image inspect "$image" >/dev/null 2>&1 \
                && ! docker pull --quiet "$image" >/dev/null 2>"$logs/pull"; then
                [ "$mode" = official ] && { cat "$logs/pull" >&2; exit 1; }
                echo "== containers: cannot pull $image ($(tail -1 "$logs/pull")): local images =="
                mode=local
                break
            fi
        done
    fi
    if [ "$mode" = local ]; then
        containers/build-images.sh
        set -a
        # shellcheck source=containers/local.env
        . containers/local.env
        set +a
    fi
}

build() {  # tag, docker build arguments: build it, and remove the image it replaced
    local tag="$1" old
    shift
    old="$(docker image inspect --format '{{.Id}}' "$tag" 2>/dev/null || true)"
    docker build --quiet --force-rm --build-arg "BASE=$TASKAPI_PYTHON_IMAGE" "$@" --tag "$tag" . >/dev/null
    if [ -n "$old" ] && [ "$old" != "$(docker image inspect --format '{{.Id}}' "$tag")" ]; then
        docker rmi "$old" >/dev/null 2>&1 || true
    fi
}

build_service_image() {
    export TASKAPI_IMAGE=taskapi:test
    # The build stage gets a tag of its own, or the next build would find its layers (the locked
    # dependencies) gone with the previous image and install them again.
    build "$TASKAPI_IMAGE-build" --target build
    build "$TASKAPI_IMAGE"
}

command -v docker >/dev/null || leave_out "no docker CLI (as root, \`make docker\` installs Debian's)"
if ! docker info >/dev/null 2>"$logs/info"; then
    if grep -q -i "permission denied" "$logs/info"; then
        leave_out "the Docker engine refuses this user: $(grep -i -m1 'permission denied' "$logs/info")"
    elif [ "$(id -u)" = 0 ] && command -v dockerd >/dev/null; then
        start_engine
    else
        leave_out "no Docker engine answers, and only root can start one here ($(tail -1 "$logs/info"))"
    fi
fi
# Ryuk, testcontainers' reaper, is one more image to pull; cleanup() does its work.
export TESTCONTAINERS_RYUK_DISABLED=true

echo "== containers: images =="
step "images (official pulled, or local built when missing or changed)" choose_images
step "service image (docker build --build-arg BASE=$TASKAPI_PYTHON_IMAGE)" build_service_image
echo "== containers: the image and the compose stack =="
step "image and compose stack tests" "$BIN/pytest" tests/containers -q -p no:cacheprovider
echo "== containers: integration and e2e suites on $TASKAPI_POSTGRES_IMAGE (testcontainers) =="
step "integration and e2e on testcontainers" env -u TEST_DATABASE_URL TEST_POSTGRES=testcontainers \
    "$BIN/pytest" tests/integration tests/e2e -q -p no:cacheprovider
