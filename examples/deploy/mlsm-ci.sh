#!/usr/bin/env bash
# The CI steps of a model repository, as one script that Jenkins, GitHub Actions and people run the same way.
# Copy it into the model repository as ci/mlsm-ci.sh. It needs `mlsm` and `git` on PATH.
#
#   ci/mlsm-ci.sh test [MODELS]     preflight the models (default: models.py) and write the JUnit report
#                                   reports/mlsm-test.xml; exit 1 when a model fails (golden files included)
#   ci/mlsm-ci.sh release TAG       pin TAG in the deployment's project file: clone $MLSM_DEPLOY_REPO, run
#                                   `mlsm pin`, test the whole deployment with the new pin
#                                   (reports/deploy-test.xml), then commit and push; nothing is pushed if
#                                   any step fails
#
# Settings (environment):
#   MLSM_DEPLOY_REPO    release: the deployment repository (any URL git can push to, or a local path)
#   MLSM_SOURCE         release: the source's name in the deployment's mlsm.toml
#   MLSM_PROJECT        release: the project file inside the deployment repository (default: mlsm.toml)
#   MLSM_DEPLOY_BRANCH  release: the deployment branch to update (default: main)
#   MLSM_REPORTS        where the JUnit reports go (default: reports)
#   MLSM_TEST_ARGS      extra arguments for `mlsm test` (e.g. "--examples 300")
set -euo pipefail

reports="${MLSM_REPORTS:-reports}"
mkdir -p "$reports"
reports="$(cd "$reports" && pwd)"

usage() {
    echo "usage: $0 test [MODELS] | release TAG" >&2
    exit 2
}

need() {
    if [ -z "${!1:-}" ]; then
        echo "mlsm-ci: $1 is not set: $2" >&2
        exit 2
    fi
}

case "${1:-}" in
test)
    models="${2:-models.py}"
    # shellcheck disable=SC2086 # MLSM_TEST_ARGS is a list of arguments
    exec mlsm test "$models" --junit-xml "$reports/mlsm-test.xml" ${MLSM_TEST_ARGS:-}
    ;;
release)
    tag="${2:-}"
    [ -n "$tag" ] || usage
    need MLSM_DEPLOY_REPO "the deployment repository to update"
    need MLSM_SOURCE "the name of this model's source in the deployment's mlsm.toml"
    project="${MLSM_PROJECT:-mlsm.toml}"
    branch="${MLSM_DEPLOY_BRANCH:-main}"
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
    git clone --quiet --branch "$branch" "$MLSM_DEPLOY_REPO" "$work/deploy"
    mlsm pin "$work/deploy/$project" "$MLSM_SOURCE" --tag "$tag"
    # shellcheck disable=SC2086
    mlsm test "$work/deploy/$project" --junit-xml "$reports/deploy-test.xml" ${MLSM_TEST_ARGS:-}
    cd "$work/deploy"
    if git diff --quiet -- "$project"; then
        echo "mlsm-ci: $project already pins $MLSM_SOURCE to $tag"
        exit 0
    fi
    git add -- "$project"
    git -c user.name="${GIT_COMMITTER_NAME:-mlsm CI}" -c user.email="${GIT_COMMITTER_EMAIL:-mlsm-ci@localhost}" \
        commit --quiet -m "Pin $MLSM_SOURCE to $tag" -m "Released by the CI of $MLSM_SOURCE; roll back with: mlsm pin $project $MLSM_SOURCE --tag <previous tag>"
    git push --quiet origin "HEAD:$branch"
    echo "mlsm-ci: pinned $MLSM_SOURCE to $tag in $MLSM_DEPLOY_REPO ($branch)"
    ;;
*)
    usage
    ;;
esac
