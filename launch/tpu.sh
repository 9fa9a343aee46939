#!/usr/bin/env bash
# Runs one command on every worker of a Cloud TPU VM pod, in the repository's
# checkout there:
#
#   launch/tpu.sh --tpu NAME --zone ZONE [--project P] [--repo-dir DIR] [--dry-run] \
#       -- COMMAND...
#
# is
#
#   gcloud compute tpus tpu-vm ssh NAME --zone=ZONE [--project=P] --worker=all \
#       --command="cd DIR && COMMAND"
#
# with DIR and every word of COMMAND quoted for the workers' shell (printf %q), so
# they arrive as typed here. JAX on a TPU VM finds the pod's process layout itself,
# so COMMAND is the same on every worker, e.g.
#
#   launch/tpu.sh --tpu my-v4-32 --zone us-central2-b -- \
#       .venv/bin/python -m gait_jax.main --config experiments/pretrain_gaitmae.py:paper \
#       --workdir /mnt/shared/runs/paper --config.data.shards=/mnt/shared/shards
#
# The workdir (checkpoints: every process writes its part) and the shards must be on
# a file system every worker mounts at the same path (an NFS share such as Filestore,
# or a bucket through gcsfuse); gs:// URLs are not read directly.
#
# DIR defaults to this checkout's path relative to the home directory when it is
# under it (gcloud's ssh starts in the workers' home), else its absolute path.
# --dry-run prints the gcloud command instead of running it. Usage errors exit 2.
set -euo pipefail

usage() {
  echo "usage: launch/tpu.sh --tpu NAME --zone ZONE [--project P] [--repo-dir DIR]" \
       "[--dry-run] -- COMMAND..." >&2
}

fail() {
  echo "launch/tpu.sh: error: $*" >&2
  usage
  exit 2
}

tpu="" zone="" project="" repo_dir="" dry_run=0
while [ $# -gt 0 ]; do
  case "$1" in
    --) shift; break ;;
    -h|--help) usage; exit 0 ;;
    --dry-run) dry_run=1; shift ;;
    --tpu=*|--zone=*|--project=*|--repo-dir=*)
      set -- "${1%%=*}" "${1#*=}" "${@:2}" ;;
    --tpu|--zone|--project|--repo-dir)
      [ $# -ge 2 ] && [ -n "$2" ] || fail "$1 needs a value"
      case "$1" in
        --tpu) tpu="$2" ;;
        --zone) zone="$2" ;;
        --project) project="$2" ;;
        --repo-dir) repo_dir="$2" ;;
      esac
      shift 2 ;;
    *) fail "unknown option '$1' (the command goes after --)" ;;
  esac
done
[ -n "$tpu" ] || fail "--tpu is required"
[ -n "$zone" ] || fail "--zone is required"
[ $# -gt 0 ] || fail "no command (give it after --)"

if [ -z "$repo_dir" ]; then
  repo_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  case "$repo_dir" in
    "$HOME"/*) repo_dir="${repo_dir#"$HOME"/}" ;;
  esac
fi

remote="cd $(printf '%q' "$repo_dir") &&$(printf ' %q' "$@")"
gcloud=(gcloud compute tpus tpu-vm ssh "$tpu" "--zone=$zone")
[ -z "$project" ] || gcloud+=("--project=$project")
gcloud+=(--worker=all "--command=$remote")

if [ "$dry_run" = 1 ]; then
  printf '%q' "${gcloud[0]}"
  printf ' %q' "${gcloud[@]:1}"
  echo
  exit 0
fi
exec "${gcloud[@]}"
