#!/usr/bin/env bash
# Install profiles/slurm as the user profile "slurm", so that `snakemake --profile slurm` works from
# any culturalign working directory: ${XDG_CONFIG_HOME:-~/.config}/snakemake/slurm (where Snakemake
# looks for profiles by name).
#
# By default the profile is a symbolic link to this checkout's profiles/slurm: it follows `git pull`,
# and any file the profile names relative to itself is still found. --copy installs an independent copy
# of the whole directory instead (to edit it for your cluster; relative paths inside it keep working).
# An existing profile of that name is replaced only with --force.
#
# usage: profiles/install_slurm_profile.sh [--copy] [--force] [--name NAME]   (`make slurm-profile` runs it)
set -euo pipefail

mode=link
force=0
name=slurm
while [ $# -gt 0 ]; do
    case "$1" in
        --copy) mode=copy ;;
        --force) force=1 ;;
        --name) name="${2:?--name needs a value}"; shift ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "install_slurm_profile.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

source_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/slurm" && pwd -P)"
target_root="${XDG_CONFIG_HOME:-$HOME/.config}/snakemake"
target="$target_root/$name"

if [ -e "$target" ] || [ -L "$target" ]; then
    if [ "$(readlink -f "$target")" = "$source_dir" ] && [ "$mode" = link ]; then
        echo "profile '$name' already links to $source_dir"
        exit 0
    fi
    if [ "$force" != 1 ]; then
        echo "install_slurm_profile.sh: $target exists; rerun with --force to replace it" >&2
        exit 1
    fi
    rm -rf "$target"
fi

mkdir -p "$target_root"
if [ "$mode" = link ]; then
    ln -s "$source_dir" "$target"
else
    cp -R "$source_dir" "$target"
fi
echo "installed profile '$name': $target -> $source_dir ($mode)"
echo "use it from the workflow directory: snakemake --profile $name"
