/* Drive neurograph from C: compile a spec string, run it, read spikes and a state array,
 * change a parameter, continue. Built and run by capi/tests/c_example.rs:
 *   cc run_cuba.c -I ../include -L <target dir> -lneurograph_c -o run_cuba && ./run_cuba
 * Prints one line per fact, which the test compares with the Rust API. */
#include <stdio.h>
#include <stdlib.h>

#include "neurograph.h"

static const char *SPEC =
    "model cuba_c\n"
    "neuron LIF {\n"
    "  param taum = 20 ms, taue = 5 ms, taui = 10 ms\n"
    "  param Vt = -50 mV, Vr = -60 mV, El = -49 mV\n"
    "  state v: volt = uniform(Vr, Vt)\n"
    "  state ge: volt = 0 mV\n"
    "  state gi: volt = 0 mV\n"
    "  dv/dt  = (ge + gi - (v - El)) / taum   unless refractory\n"
    "  dge/dt = -ge / taue\n"
    "  dgi/dt = -gi / taui\n"
    "  spike when v > Vt { v = Vr }\n"
    "  refractory 5 ms\n"
    "}\n"
    "synapse Exc { on pre { post.ge += 1.62 mV } }\n"
    "synapse Inh { on pre { post.gi += -9 mV } }\n"
    "population E = LIF[400]\n"
    "population I = LIF[100]\n"
    "project E -> (E, I) via Exc { connect bernoulli(0.16) }\n"
    "project I -> (E, I) via Inh { connect bernoulli(0.16) }\n"
    "record E.spikes\n"
    "run { dt = 0.1 ms; duration = 1 s }\n";

/* Stop with the library's message when a call fails. */
static void check(NgStatus status, const char *what) {
  if (status != NG_OK) {
    fprintf(stderr, "%s failed (%d): %s\n", what, (int)status, ng_last_error());
    exit(1);
  }
}

int main(void) {
  NgModel *model = NULL;
  NgSimulation *sim = NULL;

  /* A spec error comes back as a status and a located message. */
  if (ng_model_compile_str("model bad\nneuron N { state v: volt = 0 mV; dv/dt = v }\n", NULL,
                           &model) != NG_COMPILE_ERROR) {
    fprintf(stderr, "a bad spec compiled\n");
    return 1;
  }
  printf("compile error: %s\n", ng_last_error());

  check(ng_model_compile_str(SPEC, NULL, &model), "compile");
  check(ng_simulation_new(model, 7, NG_BACKEND_JIT, &sim), "simulation");
  /* Two threads for the population updates: the same results as one. */
  check(ng_simulation_set_threads(sim, 2), "threads");
  if (ng_simulation_set_threads(sim, 0) != NG_VALUE_ERROR) {
    fprintf(stderr, "zero threads were accepted\n");
    return 1;
  }
  check(ng_simulation_run_for(sim, "100 ms"), "run");

  size_t count = 0;
  check(ng_simulation_spikes(sim, "E", NULL, NULL, 0, &count), "spike count");
  double *times = malloc(count * sizeof(double) + 1);
  uint32_t *indices = malloc(count * sizeof(uint32_t) + 1);
  check(ng_simulation_spikes(sim, "E", times, indices, count, &count), "spikes");
  printf("spikes after 100 ms: %zu\n", count);
  if (count > 0) {
    printf("first spike: %.17g %u\n", times[0], indices[0]);
  }

  size_t n = 0;
  check(ng_simulation_state(sim, "E", "v", NULL, 0, &n), "state size");
  double *v = malloc(n * sizeof(double));
  check(ng_simulation_state(sim, "E", "v", v, n, &n), "state");
  printf("E.v[0] after 100 ms: %.17g of %zu\n", v[0], n);

  /* A buffer that is too small is refused, not overrun. */
  if (ng_simulation_state(sim, "E", "v", v, 3, &n) != NG_VALUE_ERROR) {
    fprintf(stderr, "a short buffer was accepted\n");
    return 1;
  }

  check(ng_simulation_set_param(sim, "LIF.taum", "12 ms"), "set_param");
  double taum = 0;
  check(ng_simulation_param(sim, "LIF.taum", &taum), "param");
  printf("taum: %.17g\n", taum);
  if (ng_simulation_set_param(sim, "LIF.taum", "5 mV") != NG_VALUE_ERROR) {
    fprintf(stderr, "a value in the wrong unit was accepted\n");
    return 1;
  }
  check(ng_simulation_step(sim, 1000), "continue");
  check(ng_simulation_spikes(sim, "E", NULL, NULL, 0, &count), "spike count");
  printf("steps: %llu\n", (unsigned long long)ng_simulation_steps(sim));
  printf("spikes after 200 ms: %zu\n", count);

  /* Ablation: silence E[0..10] for 100 ms; none of them spikes in that time. */
  uint32_t quiet[10];
  for (uint32_t k = 0; k < 10; k++) {
    quiet[k] = k;
  }
  check(ng_simulation_silence(sim, "E", quiet, 10), "silence");
  uint32_t outside = 3200;
  if (ng_simulation_silence(sim, "E", &outside, 1) != NG_VALUE_ERROR ||
      ng_simulation_silence(sim, "Nope", quiet, 1) != NG_NAME_ERROR) {
    fprintf(stderr, "a bad silence call was accepted\n");
    return 1;
  }
  check(ng_simulation_step(sim, 1000), "silenced");
  check(ng_simulation_unsilence(sim), "unsilence");
  size_t before = count;
  check(ng_simulation_spikes(sim, "E", NULL, NULL, 0, &count), "spike count");
  times = realloc(times, count * sizeof(double) + 1);
  indices = realloc(indices, count * sizeof(uint32_t) + 1);
  check(ng_simulation_spikes(sim, "E", times, indices, count, &count), "spikes");
  size_t silenced_spikes = 0;
  for (size_t k = before; k < count; k++) {
    silenced_spikes += indices[k] < 10;
  }
  printf("spikes after 300 ms: %zu\n", count);
  printf("spikes of silenced neurons: %zu\n", silenced_spikes);

  free(times);
  free(indices);
  free(v);
  ng_simulation_free(sim);
  ng_model_free(model);
  return 0;
}
