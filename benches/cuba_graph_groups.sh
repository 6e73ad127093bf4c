#!/bin/sh
# The CUBA numbers of README's `graph` and `groups` sections: specs/cuba.ng with its two
# projections named (EE, IE) and their synapses recorded, run for 1 s (seed 1), then the graph
# pass (with and without the degree-preserving null model, timed) and the groups pass, whose
# circuit plot is the README's docs/cuba_groups_circuit.svg.
# Usage: benches/cuba_graph_groups.sh   (release build; writes under target/cuba-graph/)
set -eu
cd "$(dirname "$0")/.."
cargo build --release -q
ng=${CARGO_TARGET_DIR:-target}/release/neurograph
work=target/cuba-graph
rm -rf "$work"
mkdir -p "$work"
sed -e 's/^project E -> (E, I) via Exc/project EE: E -> (E, I) via Exc/' \
    -e 's/^project I -> (E, I) via Inh/project IE: I -> (E, I) via Inh/' \
    -e 's/^record E.spikes, I.spikes$/record E.spikes, I.spikes, EE.edges, IE.edges/' \
    specs/cuba.ng > "$work/cuba.ng"
grep -q 'EE.edges' "$work/cuba.ng" || { echo "cuba.ng changed: the sed lines need updating" >&2; exit 1; }
"$ng" run "$work/cuba.ng" --seed 1 --duration 1s --quiet --out "$work/trace"
timed() {
    started=$(date +%s.%N)
    "$@"
    ended=$(date +%s.%N)
    echo "wall: $(echo "$ended - $started" | bc) s" >&2
}
echo "== graph, no null model"
timed "$ng" analyze "$work/trace" graph --null-samples 0
echo "== graph, 20 null samples"
timed "$ng" analyze "$work/trace" graph
echo "== groups"
timed "$ng" analyze "$work/trace" groups --target 'E[0..20]' --weight EE=we --weight IE=wi --hops 2 \
    --json "$work/groups.json"
# The README's figure docs/cuba_groups_circuit.svg.
"$ng" plot "$work/trace" circuit --circuit "$work/groups.json" -o "$work/cuba_groups_circuit.svg"
echo "circuit: $work/cuba_groups_circuit.svg (README: docs/cuba_groups_circuit.svg)"
