#!/usr/bin/env bash
# Build the pinned side environment that runs neural-tangents 0.6.5 (reference values, benchmark).
#
#   bash tools/nt_reference/build_env.sh [ENV_DIR]     # default: <repo>/.nt-env (git-ignored)
#
# neural-tangents 0.6.5 is the last release; it needs an old JAX (it uses APIs removed later),
# so it lives in its own venv and is never imported by ntk_air itself. Pins:
#   jax[cpu]==0.4.25, numpy<2, scipy<1.13, frozendict, then neural-tangents==0.6.5 --no-deps
# (its declared deps would pull tensorflow for the unused `experimental` subpackage; see
# nt_import.py for the stub that makes `import neural_tangents` work without it).
# Idempotent: an existing env that already imports the pinned versions is left untouched.
# Choose the interpreter with PYTHON=/path/to/python3.1x (default: python3.11, else python3.12).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
env_dir="${1:-$repo/.nt-env}"

check_env() {
  [ -x "$env_dir/bin/python" ] || return 1
  "$env_dir/bin/python" - "$here" <<'PY' >/dev/null 2>&1
import sys
sys.path.insert(0, sys.argv[1])
from nt_import import import_neural_tangents
import jax, numpy, scipy
nt = import_neural_tangents()
assert nt.__version__ == "0.6.5", nt.__version__
assert jax.__version__ == "0.4.25", jax.__version__
assert int(numpy.__version__.split(".")[0]) < 2, numpy.__version__
assert tuple(int(p) for p in scipy.__version__.split(".")[:2]) < (1, 13), scipy.__version__
PY
}

if check_env; then
  echo "nt-env: $env_dir already has neural-tangents 0.6.5 on jax 0.4.25; nothing to do"
  exit 0
fi

if [ -n "${PYTHON:-}" ]; then
  py="$PYTHON"
elif command -v python3.11 >/dev/null 2>&1; then
  py=python3.11
elif command -v python3.12 >/dev/null 2>&1; then
  py=python3.12
else
  echo "nt-env: need python3.11 or python3.12 on PATH (or set PYTHON=...)" >&2
  exit 1
fi
ver="$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
case "$ver" in
  3.11|3.12) ;;
  *) echo "nt-env: $py is Python $ver; jax 0.4.25 wheels need 3.11 or 3.12" >&2; exit 1 ;;
esac

if [ ! -x "$env_dir/bin/python" ]; then
  echo "nt-env: creating venv at $env_dir with $py ($ver)"
  "$py" -m venv "$env_dir"
fi
"$env_dir/bin/python" -m pip install --quiet --upgrade pip
"$env_dir/bin/python" -m pip install --quiet "jax[cpu]==0.4.25" "numpy<2" "scipy<1.13" frozendict
"$env_dir/bin/python" -m pip install --quiet --no-deps "neural-tangents==0.6.5"

if check_env; then
  echo "nt-env: ready at $env_dir"
else
  echo "nt-env: built $env_dir but the import check failed; run" >&2
  echo "  $env_dir/bin/python -c 'import sys; sys.path.insert(0, \"$here\"); import nt_import; nt_import.import_neural_tangents()'" >&2
  exit 1
fi
