#!/usr/bin/env bash
# Build the one-folder PyInstaller bundle dist/mqstudio/ and smoke-test it offscreen: `--version`, then
# `--screenshot` must write a 1280x800 PNG using the bundle's own resources.
#   PY=.venv/bin/python packaging/build-bundle.sh      (PyInstaller comes from the `build` extra)
# DIST and WORK override the output and scratch folders (default dist/ and build/pyinstaller/).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DIST=${DIST:-dist}
WORK=${WORK:-build/pyinstaller}

if ! "$PY" -c "import PyInstaller" 2>/dev/null; then
  echo "build-bundle: PyInstaller is missing; install it with: $PY -m pip install -e '.[build]'" >&2
  exit 2
fi

"$PY" -m PyInstaller --noconfirm --clean --log-level WARN \
  --distpath "$DIST" --workpath "$WORK" packaging/pyinstaller/mqstudio.spec

bundle=$(realpath "$DIST/mqstudio/mqstudio")
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

echo "== smoke test: $bundle --version"
version=$(cd "$scratch" && "$bundle" --version)
expected="mqstudio $("$PY" -c 'import mqstudio; print(mqstudio.__version__)')"
if [[ "$version" != "$expected" ]]; then
  echo "build-bundle: --version printed '$version', expected '$expected'" >&2
  exit 1
fi

# Run from an empty directory with a private home, so nothing from the checkout or the user is used.
in_scratch() {
  (cd "$scratch" && env HOME="$scratch" XDG_CONFIG_HOME="$scratch/config" XDG_DATA_HOME="$scratch/data" \
    XDG_STATE_HOME="$scratch/state" XDG_CACHE_HOME="$scratch/cache" QT_QPA_PLATFORM=offscreen "$@")
}

echo "== smoke test: validate a bundled example"
in_scratch "$bundle" validate "$(dirname "$bundle")/_internal/mqstudio/resources/examples/demo.mqs.json"

# The client libraries are imported lazily: an unreachable broker must give a clean exit 2 (no
# traceback from a module or data file PyInstaller left out).
for url in "amqp://guest@127.0.0.1:1/ --http http://127.0.0.1:1" "kafka://127.0.0.1:1"; do
  echo "== smoke test: fetch --url $url (unreachable on purpose)"
  # shellcheck disable=SC2086  # $url carries two arguments on purpose
  if in_scratch env MQSTUDIO_PASSWORD=x "$bundle" fetch --url $url "$scratch/out.json" 2>"$scratch/err"; then
    echo "build-bundle: fetch from an unreachable broker succeeded?" >&2; exit 1
  else
    status=$?
  fi
  cat "$scratch/err"
  if ((status != 2)) || grep -q Traceback "$scratch/err"; then
    echo "build-bundle: expected a clean exit 2, got $status" >&2; exit 1
  fi
done

echo "== smoke test: install-desktop points the menu entry at the bundle"
in_scratch "$bundle" install-desktop
entry="$scratch/data/applications/io.github.mqstudio.MqStudio.desktop"
if ! grep -qxF "Exec=$bundle %f" "$entry"; then
  echo "build-bundle: $entry does not launch $bundle:" >&2; grep Exec "$entry" >&2; exit 1
fi

echo "== smoke test: $bundle --screenshot --wait 3 (offscreen; the live demo on the embedded broker)"
in_scratch "$bundle" --screenshot "$scratch/bundle.png" --wait 3
"$PY" - "$scratch/bundle.png" <<'PYEOF'
import struct, sys
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
size = struct.unpack(">II", data[16:24])
assert size == (1280, 800), f"unexpected size {size}"
assert len(data) > 20_000, f"suspiciously small screenshot ({len(data)} bytes)"
print(f"screenshot ok: {size[0]}x{size[1]}, {len(data)} bytes")
PYEOF
cp "$scratch/bundle.png" "$WORK/smoke-screenshot.png"
echo "build-bundle: $DIST/mqstudio/ ($(du -sh "$DIST/mqstudio" | cut -f1)) passed its smoke test;" \
  "screenshot kept at $WORK/smoke-screenshot.png"
