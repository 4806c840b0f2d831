# Sourced by scripts/demo and scripts/test: make sure the project's virtualenv (.venv) exists, holds the project
# (editable, with the extras asked for) and comes first on PATH. Never installs into the system's Python: Debian 12+
# and Ubuntu 23.04+ refuse that anyway (PEP 668, "externally-managed-environment").
#   ensure_venv [EXTRAS]     e.g. ensure_venv dev
# ORCH_PYTHON chooses the interpreter the virtualenv is made from (default: python3 on PATH).

ensure_venv() {
    local extras="${1:-}" root venv python spec stamp want
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
    venv="$root/.venv"
    python="${ORCH_PYTHON:-python3}"
    if [ ! -x "$venv/bin/python" ]; then
        if ! command -v "$python" >/dev/null 2>&1; then
            echo "error: $python not found: install Python 3.11 or newer (Debian: apt-get install python3 python3-venv)" >&2
            return 1
        fi
        if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
            echo "error: $("$python" --version 2>&1) is too old: the orchestrator needs Python 3.11+ (set ORCH_PYTHON to one)" >&2
            return 1
        fi
        if ! "$python" -c 'import ensurepip, venv' >/dev/null 2>&1; then
            if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
                echo "== installing python3-venv (apt-get; log in /tmp/orchestrator-apt-venv.log)" >&2
                (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv) \
                    >/tmp/orchestrator-apt-venv.log 2>&1 \
                    || { echo "error: apt-get install python3-venv failed: see /tmp/orchestrator-apt-venv.log" >&2; return 1; }
            else
                echo "error: $python has no venv module: install it (Debian/Ubuntu: sudo apt-get install python3-venv)" >&2
                return 1
            fi
        fi
        echo "== creating $venv from $("$python" --version 2>&1)" >&2
        "$python" -m venv "$venv"
    fi
    spec="."
    [ -n "$extras" ] && spec=".[$extras]"
    # Reinstall only when pyproject.toml or the extras change (the install is editable: code edits need none);
    # asking for no extras takes an install that has some.
    stamp="$venv/.orchestrator-installed"
    want="$spec $(cksum <"$root/pyproject.toml")"
    have="$(cat "$stamp" 2>/dev/null || true)"
    if [ "$have" != "$want" ] && { [ -n "$extras" ] || [ "${have#* }" != "${want#* }" ]; }; then
        echo "== installing the project into .venv ($spec)" >&2
        (cd "$root" && "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e "$spec")
        printf '%s\n' "$want" >"$stamp"
    fi
    export VIRTUAL_ENV="$venv"
    export PATH="$venv/bin:$PATH"
    hash -r
}
