#!/usr/bin/env bash
# Vigil's one entry point for people and CI.
#
#   ./dev.sh run [server flags…]  set up, build the package, start the server with --demo, print the demo URL
#   ./dev.sh test                 set up, build, and run every test suite (on a throwaway PostgreSQL too)
#   ./dev.sh build                build pkg/ (wasm-pack, release, wasm-opt -Oz, tools/order-functions.mjs, tools/short-names.mjs; every variant) and the server
#   ./dev.sh size                 build pkg/ and print each variant's gzipped size (wasm + JS glue)
#   ./dev.sh bench                build, then print the benchmark figures (not asserted)
#   ./dev.sh fuzz [SECONDS]       run every fuzz target (fuzz/) for an equal share of SECONDS (default 60 in all)
#   ./dev.sh soak [ROUNDS] [Q]    build, then soak one page for ROUNDS rounds (default 30): memory per round and growth
#   ./dev.sh setup                install what is missing, and nothing else
#
# Set-up installs, only when missing: the wasm32-unknown-unknown target, wasm-pack (pinned),
# wasm-bindgen-cli at exactly the version in Cargo.lock, wasm-opt from npm's binaryen (pinned;
# Debian's is too old for current rustc output), uPlot (the dashboard's charts), and Debian's
# chromium + chromium-driver; `test` also Debian's postgresql.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
ROOT=$PWD

WASM_PACK_VERSION=0.15.1
BINARYEN_VERSION=132.0.0
SENTRY_BROWSER_VERSION=11.12.0   # benchmarks only
WEB_VITALS_VERSION=6.2.3         # tests: the performance monitor is compared with it
ESBUILD_VERSION=0.25
UPLOT_VERSION=1.6.32             # the dashboard's charts, served from www/dashboard/vendor/
# npm packages for the build (binaryen's wasm-opt), shared by every checkout on this machine.
TOOLS="${VIGIL_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/vigil/tools}"

export PATH="$TOOLS/node_modules/.bin:$HOME/.cargo/bin:$PATH"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

APT_UPDATED=""
apt_install() {
  if [ -z "$APT_UPDATED" ]; then
    as_root apt-get update -qq
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@"
}

# A throwaway PostgreSQL cluster (`./dev.sh test`; reusable by `bench`): Debian's `postgresql`
# installed when missing, a fresh cluster in a temporary folder on a free port, trust auth for
# the user `vigil` on 127.0.0.1 only, fsync off (nothing in it outlives the run). Exports
# VIGIL_TEST_POSTGRES (each PostgreSQL test creates its own database on it). pg_stop stops it and
# deletes the folder; pg_start arms it on EXIT, so it runs even when a suite fails.
PG_DIR=""
pg_as() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
pg_start() {
  if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
    say "installing PostgreSQL (Debian's postgresql)"
    apt_install postgresql
  fi
  local bin port attempt
  bin=$(dirname "$(compgen -G "/usr/lib/postgresql/*/bin/initdb" | sort -V | tail -n 1)")
  PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/vigil-pg.XXXXXX")
  trap pg_stop EXIT
  [ "$(id -u)" != 0 ] || chown postgres "$PG_DIR"
  pg_as "$bin/initdb" -D "$PG_DIR/data" -A trust -U vigil --no-sync >"$PG_DIR/initdb.log" 2>&1 \
    || { cat "$PG_DIR/initdb.log" >&2; return 1; }
  for attempt in 1 2 3 4 5; do
    # A port nothing answers on; if another process takes it first, the start fails: try again.
    port=$((20000 + RANDOM % 40000))
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then continue; fi
    if pg_as "$bin/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w -t 30 \
      -o "-p $port -k $PG_DIR -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" \
      start >/dev/null; then
      export VIGIL_TEST_POSTGRES="postgres://vigil@127.0.0.1:$port"
      say "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') for the tests on $VIGIL_TEST_POSTGRES"
      return 0
    fi
  done
  cat "$PG_DIR/log" >&2
  return 1
}
pg_stop() {
  [ -n "$PG_DIR" ] || return 0
  local bin
  bin=$(dirname "$(compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" | sort -V | tail -n 1)")
  if [ -f "$PG_DIR/data/postmaster.pid" ]; then
    pg_as "$bin/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$PG_DIR"
  PG_DIR=""
}

# The wasm-bindgen version Cargo.lock resolved (what the CLI must equal).
locked_wasm_bindgen() {
  awk '/^name = "wasm-bindgen"$/ { getline; gsub(/"/, "", $3); print $3; exit }' Cargo.lock
}

setup() {
  command -v cargo >/dev/null || { echo "cargo is missing: install Rust with rustup first" >&2; exit 1; }

  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    say "adding the wasm32-unknown-unknown target"
    rustup target add wasm32-unknown-unknown
  fi

  if [ "$(wasm-pack --version 2>/dev/null)" != "wasm-pack $WASM_PACK_VERSION" ]; then
    say "installing wasm-pack $WASM_PACK_VERSION"
    cargo install wasm-pack --version "$WASM_PACK_VERSION" --locked --force
  fi

  [ -f Cargo.lock ] || cargo generate-lockfile
  local wb
  wb=$(locked_wasm_bindgen)
  if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $wb" ]; then
    say "installing wasm-bindgen-cli $wb (the version in Cargo.lock)"
    # --locked first; the registry may lack a version its lock file names, so fall back.
    cargo install wasm-bindgen-cli --version "$wb" --locked --force ||
      cargo install wasm-bindgen-cli --version "$wb" --force
  fi

  if ! command -v npm >/dev/null; then
    say "installing Node.js and npm (for binaryen's wasm-opt)"
    apt_install nodejs npm
  fi
  # Any wasm-opt of the pinned major version on PATH will do (ours in $TOOLS comes first).
  if ! wasm-opt --version 2>/dev/null | grep -q "version ${BINARYEN_VERSION%%.*}"; then
    say "installing wasm-opt (npm binaryen@$BINARYEN_VERSION)"
    mkdir -p "$TOOLS"
    npm install --prefix "$TOOLS" --no-audit --no-fund --loglevel=error "binaryen@$BINARYEN_VERSION"
  fi

  # esbuild: the JS glue is measured as a bundler ships it (reference.md, "Size").
  if ! grep -qs "\"version\": \"$ESBUILD_VERSION" "$TOOLS/node_modules/esbuild/package.json"; then
    say "installing esbuild $ESBUILD_VERSION (npm, for ./dev.sh size)"
    mkdir -p "$TOOLS"
    npm install --prefix "$TOOLS" --no-audit --no-fund --loglevel=error "esbuild@$ESBUILD_VERSION"
  fi

  # Google's web-vitals, loaded next to ours in the performance monitor's end-to-end tests.
  if ! grep -qs "\"version\": \"$WEB_VITALS_VERSION\"" "$TOOLS/node_modules/web-vitals/package.json"; then
    say "installing web-vitals $WEB_VITALS_VERSION (npm, for the tests)"
    mkdir -p "$TOOLS"
    npm install --prefix "$TOOLS" --no-audit --no-fund --loglevel=error "web-vitals@$WEB_VITALS_VERSION"
  fi

  # uPlot for the dashboard's charts: installed with the other npm tools, copied where the server
  # serves the dashboard's files (www/dashboard/vendor/, not in git).
  if ! grep -qs "\"version\": \"$UPLOT_VERSION\"" "$TOOLS/node_modules/uplot/package.json"; then
    say "installing uPlot $UPLOT_VERSION (npm, the dashboard's charts)"
    mkdir -p "$TOOLS"
    npm install --prefix "$TOOLS" --no-audit --no-fund --loglevel=error "uplot@$UPLOT_VERSION"
  fi
  mkdir -p www/dashboard/vendor
  cp -f "$TOOLS/node_modules/uplot/dist/uPlot.iife.min.js" "$TOOLS/node_modules/uplot/dist/uPlot.min.css" www/dashboard/vendor/

  if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    say "installing Chromium and ChromeDriver (Debian)"
    apt_install chromium chromium-driver
  fi
}

# The package variants (issue 11): name, then Cargo features. The full build stays at
# pkg/vigil.js + pkg/vigil_bg.wasm (the demo and the tests load /pkg/vigil.js); the others go to
# pkg/<name>/vigil.js, each with its own .wasm and .d.ts, named by package.json "exports".
VARIANTS=(
  "vigil errors,perf,ws,voice"
  "telemetry errors,perf"
  "core "
)

# wasm-opt's flags for the package: the same as [package.metadata.wasm-pack.profile.release] in
# Cargo.toml, which wasm-pack runs first.
WASM_OPT_FLAGS=(-Oz --low-memory-unused --enable-bulk-memory --enable-nontrapping-float-to-int
  --enable-sign-ext --enable-mutable-globals)

build_pkg() {
  say "building pkg/ (wasm-pack, release, wasm-opt -Oz, functions ordered, short names): ${#VARIANTS[@]} variants"
  local v name features out
  for v in "${VARIANTS[@]}"; do
    name=${v%% *}
    features=${v#* }
    if [ "$name" = vigil ]; then
      out=pkg
      wasm-pack --quiet build --release --target web --out-dir pkg --out-name vigil
    else
      out=pkg/$name
      rm -rf "$out"
      wasm-pack --quiet build --release --target web --out-dir "$out" --out-name vigil \
        --no-pack -- --no-default-features ${features:+--features "$features"}
      rm -f "$out/.gitignore" "$out/README.md" "$out/package.json"
    fi
    # Function bodies in an order gzip codes smaller (SIZE-NOTES.md, step 28).
    node tools/order-functions.mjs "$out"
    wasm-opt "$out/vigil_bg.wasm" --reorder-functions-by-name "${WASM_OPT_FLAGS[@]}" --strip-debug \
      -o "$out/vigil_bg.wasm"
    # Short names for what the wasm and its glue agree on (SIZE-NOTES.md, step 14).
    node tools/short-names.mjs "$out"
  done
  # One package.json whose "exports" names every variant.
  node - "${VARIANTS[@]}" <<'JS'
const fs = require("fs");
const pkg = JSON.parse(fs.readFileSync("pkg/package.json", "utf8"));
const names = process.argv.slice(2).map((v) => v.split(" ")[0]).filter((n) => n !== "vigil");
pkg.exports = { ".": { types: "./vigil.d.ts", default: "./vigil.js" } };
for (const n of names) pkg.exports["./" + n] = { types: `./${n}/vigil.d.ts`, default: `./${n}/vigil.js` };
pkg.exports["./package.json"] = "./package.json";
pkg.files = [...new Set([...(pkg.files || []), ...names.map((n) => n + "/")])];
pkg.sideEffects = [...new Set([...(pkg.sideEffects || []), "./*/snippets/*"])];
fs.writeFileSync("pkg/package.json", JSON.stringify(pkg, null, 2) + "\n");
JS
}

# examples/vite: a Vite + TypeScript app on the built package (a `file:` dependency on pkg/),
# type-checked strictly against the shipped .d.ts and built to examples/vite/dist (the e2e suite
# serves it and reports from it).
build_example() {
  say "examples/vite: npm ci, tsc --noEmit (strict), vite build"
  (
    cd examples/vite
    npm ci --no-audit --no-fund --loglevel=error
    npm run --silent check
    npm run --silent build -- --logLevel warn
  )
}

# A build with the panic probe (feature `panic-probe`: an export that panics) and the error
# tracker, for the e2e test of the package's own panic handler; never part of pkg/.
build_panic_probe() {
  say "target/panic-probe: the error tracker and an export that panics (e2e test of the panic handler)"
  rm -rf target/panic-probe
  wasm-pack --quiet build --release --target web --out-dir target/panic-probe --out-name vigil \
    --no-pack -- --no-default-features --features errors,panic-probe
}

# reference.md "Size": gzip -9 of the .wasm, plus gzip -9 of the JS glue and its snippets bundled
# and minified as a bundler ships them (esbuild --bundle --minify --format=esm).
gz_glue() {
  esbuild "$1" --bundle --minify --format=esm --log-level=error | gzip -9 | wc -c
}

size() {
  local v name dir wasm glue
  printf '%-16s %11s %9s %9s %9s\n' variant "wasm bytes" "wasm gz" "glue gz" "total gz"
  for v in "${VARIANTS[@]}"; do
    name=${v%% *}
    dir=pkg
    [ "$name" = vigil ] || dir=pkg/$name
    wasm=$(gzip -9 -c "$dir/vigil_bg.wasm" | wc -c)
    glue=$(gz_glue "$dir/vigil.js")
    printf '%-16s %11s %9s %9s %9s\n' "vigil${dir#pkg}" "$(wc -c <"$dir/vigil_bg.wasm")" \
      "$wasm" "$glue" "$((wasm + glue))"
  done
  cat <<'TABLE'

The JS stacks, measured the same way (reference.md, "Size"), gzipped:
  @sentry/browser 11.12.0, errors only                      31.6 KB
  web-vitals 6.2.3                                           3.3 KB
  partysocket 1.3.0 / reconnecting-websocket 4.4.0       2.8 / 3.2 KB
  OpenTelemetry sdk-metrics + exporter-metrics-otlp-http    20.8 KB
  Sentry + web-vitals + partysocket + the OTel exporter     57.5 KB
  @openai/agents-realtime 0.20.0 OpenAIRealtimeWebRTC      128.6 KB
Budgets (issue 11): vigil <= 60 KB, vigil/telemetry <= 38 KB, vigil/core <= 12 KB.
TABLE
}

# The wasm-bindgen browser tests. They used to hang at "Loading scripts..." in about one run of
# four (every attempt in one CI run): the glue imported seven JS snippets at once, and the test
# runner's server (tiny_http 0.12) leaves new connections unanswered when more arrive together than
# it has idle threads (3). Snippets are now one per feature (src/js/mod.rs tests it); 32 runs in a
# row loaded. Should the page still not load (ChromeDriver: "Timed out receiving message from
# renderer" after 300 s), only that is retried, at most three times, and said so; a test that
# fails fails the run at once.
browser_tests() {
  local log attempt
  log=$(mktemp)
  for attempt in 1 2 3 4; do
    # `--features std`: the test harness links std, which brings its own panic handler.
    if wasm-pack test --headless --chrome --chromedriver "$(command -v chromedriver)" -- --features std 2>&1 | tee "$log"; then
      rm -f "$log"
      return 0
    fi
    if ! grep -q "Failed to detect test as having been run" "$log" || grep -q "^test .* FAILED" "$log"; then
      rm -f "$log"
      return 1
    fi
    say "headless Chromium stopped responding before the browser tests ran (attempt $attempt of 4)"
  done
  rm -f "$log"
  return 1
}

cmd=${1:-help}
shift || true
case "$cmd" in
  setup)
    setup
    ;;
  build)
    setup
    build_pkg
    cargo build -p vigil-server
    ;;
  size)
    setup
    build_pkg
    size
    ;;
  bench)
    setup
    build_pkg
    size
    # @sentry/browser, bundled once, to compare captureException in the same page.
    if [ ! -f "$TOOLS/sentry-bundle.js" ]; then
      say "bundling @sentry/browser $SENTRY_BROWSER_VERSION for the comparison"
      npm install --prefix "$TOOLS" --no-audit --no-fund --loglevel=error \
        "@sentry/browser@$SENTRY_BROWSER_VERSION" "esbuild@$ESBUILD_VERSION"
      printf 'import * as Sentry from "@sentry/browser";\nwindow.Sentry = Sentry;\n' >"$TOOLS/sentry-entry.mjs"
      (cd "$TOOLS" && ./node_modules/.bin/esbuild sentry-entry.mjs --bundle --minify --format=iife --outfile=sentry-bundle.js --log-level=warning)
    fi
    # Installs PostgreSQL when missing and starts the throwaway cluster of the tests (fsync off);
    # the cluster bench starts one of its own, with fsync, as a real server runs.
    pg_start
    # The ingest benchmark's load generator (Debian's wrk; its Lua script gives every request a
    # new event id).
    command -v wrk >/dev/null || { say "installing wrk (the ingest benchmark's load generator)"; apt_install wrk; }
    # The ingest benchmark also runs on PostgreSQL: a database on the throwaway cluster
    # (stopped and deleted on exit).
    "$(dirname "$(compgen -G "/usr/lib/postgresql/*/bin/createdb" | sort -V | tail -n 1)")/createdb" \
      -h 127.0.0.1 -p "${VIGIL_TEST_POSTGRES##*:}" -U vigil vigil_bench
    export VIGIL_BENCH_DATABASE_URL="$VIGIL_TEST_POSTGRES/vigil_bench"
    VIGIL_TOOLS="$TOOLS" VIGIL_SERVER_RELEASE=1 cargo bench -p vigil-e2e
    cargo bench -p vigil-server --bench read_api
    ;;
  fuzz)
    # Random seeds; inputs tried per target are printed; failing inputs land in
    # fuzz/corpus/<target>/crash-* and `cargo test -p vigil-fuzz` (in `./dev.sh test`) replays them.
    say "fuzzing every target for ${1:-60} s in all"
    cargo run --quiet -p vigil-fuzz -- "${1:-60}"
    ;;
  soak)
    # One page stays open against the real server; after each round a forced GC and the JS
    # heap, wasm memory, DevTools listeners and DOM nodes; at the end the growth per round.
    setup
    build_pkg
    say "soaking one page for ${1:-30} rounds"
    cargo run --quiet -p vigil-e2e --bin vigil-soak -- "${1:-30}" "${2:-}"
    ;;
  run)
    setup
    build_pkg
    say "building the server"
    cargo build --release -p vigil-server
    say "starting the server (Ctrl-C stops it)"
    exec target/release/vigil-server --demo "$@"
    ;;
  test)
    setup
    build_pkg
    build_example
    build_panic_probe
    say "format and lints"
    cargo fmt --all --check
    cargo clippy --workspace --all-targets --quiet -- -D warnings
    cargo clippy -p vigil --target wasm32-unknown-unknown --all-targets --features std --quiet -- -D warnings
    # The variants' feature sets (and each module alone) compile without warnings too.
    for features in "" errors perf ws voice errors,perf errors,panic-probe; do
      cargo clippy -p vigil --target wasm32-unknown-unknown --lib --quiet --no-default-features \
        ${features:+--features "$features"} -- -D warnings
    done
    say "starting a throwaway PostgreSQL cluster (store and server tests run on both engines)"
    pg_start
    say "native unit tests, server tests and end-to-end tests (headless Chromium)"
    VIGIL_TOOLS="$TOOLS" cargo test --workspace
    say "browser tests (wasm-bindgen-test, headless Chrome)"
    browser_tests
    say "all suites passed"
    ;;
  *)
    sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
    [ "$cmd" = help ] || exit 2
    ;;
esac
