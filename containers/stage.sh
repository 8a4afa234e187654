#!/usr/bin/env bash
# The container stage of `make test`: the production image, the compose stack, and the integration
# and e2e suites on a throwaway PostgreSQL container (testcontainers). Where no Docker engine can
# be had, it says so and leaves the stage out (CI, with TASKAPI_REQUIRE_ALL=1, fails instead).
#
# TASKAPI_IMAGES=auto (default) pulls the official images, or builds the local stand-ins of
# containers/local.env when no registry answers; =official or =local forces one of them.
set -Eeuo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
PROJECT_PREFIX=taskapi-test-
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

cleanup() {
    local status=$?
    # Whatever failed, nothing of ours stays: the stack, testcontainers' containers, and the
    # engine itself when this stage started it.
    if docker info >/dev/null 2>&1; then
        docker ps -aq --filter label=org.testcontainers=true | xargs -r docker rm -f -v >/dev/null
        for project in $(docker ps -a --format '{{.Label "com.docker.compose.project"}}' \
            | grep "^$PROJECT_PREFIX" | sort -u); do
            docker ps -aq --filter "label=com.docker.compose.project=$project" \
                | xargs -r docker rm -f -v >/dev/null
            docker network ls -q --filter "label=com.docker.compose.project=$project" \
                | xargs -r docker network rm >/dev/null
            docker volume ls -q --filter "label=com.docker.compose.project=$project" \
                | xargs -r docker volume rm >/dev/null
        done
    fi
    if [ -n "$started_engine" ]; then
        kill "$started_engine" 2>/dev/null || true
        for _ in $(seq 1 40); do kill -0 "$started_engine" 2>/dev/null || break; sleep 0.5; done
    fi
    if [ ${#timings[@]} -gt 0 ]; then
        echo "== containers: timings =="
        printf '%s\n' "${timings[@]}"
    fi
    exit "$status"
}
trap cleanup EXIT

start_engine() {
    local log=/tmp/taskapi-dockerd.log
    echo "== containers: starting dockerd ${DOCKERD_ARGS:---storage-driver=vfs} (log: $log) =="
    # shellcheck disable=SC2086  # a list of flags
    dockerd ${DOCKERD_ARGS:---storage-driver=vfs} >"$log" 2>&1 &
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
    local official=(postgres:18-alpine edoburu/pgbouncer:v1.24.1-p1 python:3.11-slim)
    local mode="${TASKAPI_IMAGES:-auto}" image
    if [ "$mode" != local ]; then
        for image in "${official[@]}"; do
            if ! docker image inspect "$image" >/dev/null 2>&1 \
                && ! docker pull --quiet "$image" >/dev/null 2>/tmp/taskapi-pull.log; then
                [ "$mode" = official ] && { cat /tmp/taskapi-pull.log >&2; exit 1; }
                echo "== containers: cannot pull $image ($(tail -1 /tmp/taskapi-pull.log)): local images =="
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
        # Ryuk, testcontainers' reaper, is an image from a registry too; cleanup() does its work.
        export TESTCONTAINERS_RYUK_DISABLED=true
    else
        export TASKAPI_PYTHON_IMAGE=python:3.11-slim TASKAPI_POSTGRES_IMAGE=postgres:18-alpine
        export TASKAPI_PGBOUNCER_IMAGE=edoburu/pgbouncer:v1.24.1-p1
    fi
}

build_service_image() {
    export TASKAPI_IMAGE=taskapi:test
    local build=(docker build --quiet --force-rm --build-arg "BASE=$TASKAPI_PYTHON_IMAGE")
    # The build stage gets a tag of its own: untagged, its layers (the locked dependencies) would
    # be pruned below with the previous builds', and the next build would install them again.
    "${build[@]}" --target build --tag "$TASKAPI_IMAGE-build" . >/dev/null
    "${build[@]}" --tag "$TASKAPI_IMAGE" . >/dev/null
    docker image prune --force >/dev/null  # what earlier builds left untagged
}

command -v docker >/dev/null || leave_out "no docker CLI (as root, \`make docker\` installs Debian's)"
if ! docker info >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v dockerd >/dev/null; then
        start_engine
    else
        leave_out "no Docker engine answers, and only root can start one here"
    fi
fi

echo "== containers: images =="
step "images (official pulled, or local built when missing or changed)" choose_images
step "service image (docker build --build-arg BASE=$TASKAPI_PYTHON_IMAGE)" build_service_image
echo "== containers: the image and the compose stack =="
step "image and compose stack tests" "$BIN/pytest" tests/containers -q -p no:cacheprovider
echo "== containers: integration and e2e suites on $TASKAPI_POSTGRES_IMAGE (testcontainers) =="
step "integration and e2e on testcontainers" env -u TEST_DATABASE_URL TEST_POSTGRES=testcontainers \
    "$BIN/pytest" tests/integration tests/e2e -q -p no:cacheprovider
