# Shared by the peer benchmark scripts (sourced): the Brian2 virtual environment and neurograph
# simulation-loop timings. Expects $root; sets $venv and $ng.
venv=${NEUROGRAPH_BRIAN2_VENV:-$root/target/brian2-venv}
# Brian2 2.11 needs Python >= 3.13: the venv is made with pyenv's 3.13.0.
brian2_venv() {
  if [ ! -x "$venv/bin/python" ]; then
    echo "creating $venv with brian2 ..." >&2
    PYENV_VERSION=3.13.0 python3 -m venv "$venv"
    "$venv/bin/pip" install -q brian2
  fi
}
(cd "$root" && cargo build --release -q)
ng="${CARGO_TARGET_DIR:-$root/target}/release/neurograph"

# One neurograph run: spec seconds backend [flags...] -> "setup_s sim_s process_s" (set-up and
# simulation loop from its summary line, the whole process from the shell). One thread unless
# NG_THREADS says otherwise.
ng_run() {
  local spec=$1 seconds=$2 backend=$3 start end out setup sim
  shift 3
  start=$(date +%s.%N)
  out=$("$ng" run "$spec" --duration "${seconds}s" --backend "$backend" --seed 1 \
    --threads "${NG_THREADS:-1}" --out "$work/trace-$RANDOM" "$@")
  end=$(date +%s.%N)
  setup=$(sed -n 's/^setup \([0-9.]*\) s, simulation \([0-9.]*\) s wall.*/\1/p' <<<"$out")
  sim=$(sed -n 's/^setup \([0-9.]*\) s, simulation \([0-9.]*\) s wall.*/\2/p' <<<"$out")
  echo "$setup $sim $(echo "$end - $start" | bc)"
}

# The fastest simulation loop of three runs (same arguments as ng_run) -> "setup_s sim_s
# process_s", set-up and process of the first run.
ng_best() {
  local first setup sim total s
  first=$(ng_run "$@")
  read -r setup sim total <<<"$first"
  for _ in 1 2; do
    read -r _ s _ < <(ng_run "$@")
    sim=$(echo "if ($s < $sim) $s else $sim" | bc)
  done
  echo "$setup $sim $total"
}

ratio() { echo "scale=2; $1 / $2" | bc; }
