"""Reduced tripartite synapse in Brian2: one Tsodyks-Markram synapse with presynaptic
gliotransmitter receptors and one G-ChI astrocyte, coupled both ways through summed variables,
driven by a fixed presynaptic spike train. Equations and parameters as in Brian2's
examples/frompapers/Stimberg_et_al_2018/example_6_COBA_with_astro.py (shared MODELS.md 2.2),
integrated at dt = 0.1 ms so that neurograph's `tests/families.rs` can compare traces step by
step with the same model written in neurograph's language.

Regenerate the committed fixture (needs Python >= 3.13 for Brian2 2.11):
    PYENV_VERSION=3.13.0 python3 -m venv /tmp/b2 && /tmp/b2/bin/pip install brian2
    /tmp/b2/bin/python benches/peers/tripartite_reduced.py tests/fixtures/tripartite_reduced.csv
"""
import sys

from brian2 import *

prefs.codegen.target = "numpy"
defaultclock.dt = 0.1 * ms
duration = 4 * second
spike_times = np.arange(10, 4000, 25) * ms  # 40 Hz regular train from 10 ms

# Synapse parameters
rho_c = 0.005
Y_T = 500 * mmolar
Omega_c = 40 / second
U_0__star = 0.6
Omega_f = 3.33 / second
Omega_d = 2.0 / second
O_G = 1.5 / umolar / second
Omega_G = 0.5 / (60 * second)
alpha = 0.0
w_e = 0.05 * nS
# Astrocyte parameters
O_P = 0.9 * umolar / second
K_P = 0.05 * umolar
C_T = 2 * umolar
rho_A = 0.18
Omega_C = 6 / second
Omega_L = 0.1 / second
d_1 = 0.13 * umolar
d_2 = 1.05 * umolar
O_2 = 0.2 / umolar / second
d_3 = 0.9434 * umolar
d_5 = 0.08 * umolar
O_beta = 0.5 * umolar / second
O_N = 0.3 / umolar / second
Omega_N = 0.5 / second
K_KC = 0.5 * umolar
zeta = 10
O_delta = 1.2 * umolar / second
kappa_delta = 1.5 * umolar
K_delta = 0.1 * umolar
Omega_5P = 0.05 / second
K_D = 0.7 * umolar
K_3K = 1.0 * umolar
O_3K = 4.5 * umolar / second
C_Theta = 0.5 * umolar
Omega_A = 0.6 / second
U_A = 0.6
G_T = 200 * mmolar
rho_e = 6.5e-4
Omega_e = 60 / second

pre = SpikeGeneratorGroup(1, np.zeros(len(spike_times), dtype=int), spike_times)
post = NeuronGroup(1, "g_e : siemens")

syn_eqs = """
dY_S/dt = -Omega_c * Y_S : mmolar (clock-driven)
dGamma_S/dt = O_G * G_A * (1 - Gamma_S) - Omega_G * Gamma_S : 1 (clock-driven)
du_S/dt = -Omega_f * u_S : 1 (event-driven)
dx_S/dt = Omega_d * (1 - x_S) : 1 (event-driven)
U_0 : 1
r_S : 1
G_A : mmolar
"""
syn_action = """
U_0 = (1 - Gamma_S) * U_0__star + alpha * Gamma_S
u_S += U_0 * (1 - u_S)
r_S = u_S * x_S
x_S -= r_S
Y_S += rho_c * Y_T * r_S
g_e_post += w_e * r_S
"""
syn = Synapses(pre, post, model=syn_eqs, on_pre=syn_action, method="exponential_euler")
syn.connect()
syn.x_S = 1

astro_eqs = """
dGamma_A/dt = O_N * Y_S * (1 - clip(Gamma_A, 0, 1)) - Omega_N * (1 + zeta * C / (C + K_KC)) * clip(Gamma_A, 0, 1) : 1
dI/dt = J_beta + J_delta - J_3K - J_5P + J_coupling : mmolar
J_beta = O_beta * Gamma_A : mmolar/second
J_delta = O_delta / (1 + I / kappa_delta) * C**2 / (C**2 + K_delta**2) : mmolar/second
J_3K = O_3K * C**4 / (C**4 + K_D**4) * I / (I + K_3K) : mmolar/second
J_5P = Omega_5P * I : mmolar/second
J_coupling : mmolar/second
dC/dt = J_r + J_l - J_p : mmolar
dh/dt = (h_inf - h) / tau_h : 1
J_r = (Omega_C * m_inf**3 * h**3) * (C_T - (1 + rho_A) * C) : mmolar/second
J_l = Omega_L * (C_T - (1 + rho_A) * C) : mmolar/second
J_p = O_P * C**2 / (C**2 + K_P**2) : mmolar/second
m_inf = I / (I + d_1) * C / (C + d_5) : 1
h_inf = Q_2 / (Q_2 + C) : 1
tau_h = 1 / (O_2 * (Q_2 + C)) : second
Q_2 = d_2 * (I + d_1) / (I + d_3) : mmolar
dx_A/dt = Omega_A * (1 - x_A) : 1
dG_A/dt = -Omega_e * G_A : mmolar
Y_S : mmolar
"""
glio_release = """
G_A += rho_e * G_T * U_A * x_A
x_A -= U_A * x_A
"""
astro = NeuronGroup(1, astro_eqs, threshold="C > C_Theta", refractory="C > C_Theta",
                    reset=glio_release, method="rk4")
astro.C = 0.01 * umolar
astro.h = 0.9
astro.I = 0.01 * umolar
astro.x_A = 1.0

syn_to_astro = Synapses(syn, astro, "Y_S_post = Y_S_pre / N_incoming : mmolar (summed)")
syn_to_astro.connect()
astro_to_syn = Synapses(astro, syn, "G_A_post = G_A_pre : mmolar (summed)")
astro_to_syn.connect()

every = 100  # samples every 10 ms
syn_mon = StateMonitor(syn, ["u_S", "x_S", "Gamma_S"], record=True, dt=every * defaultclock.dt)
astro_mon = StateMonitor(astro, ["C", "I"], record=True, dt=every * defaultclock.dt)
releases = SpikeMonitor(astro)
run(duration)

out = sys.argv[1] if len(sys.argv) > 1 else "tripartite_reduced.csv"
with open(out, "w") as f:
    f.write("# Brian2 %s, %s; columns in SI units; releases at %s s\n"
            % (__import__("brian2").__version__, __file__.split("/")[-1],
               " ".join("%.4f" % t for t in releases.t / second)))
    f.write("t_s,u_S,x_S,Gamma_S,C_molar_si,I_molar_si\n")
    for k in range(len(syn_mon.t)):
        f.write("%.4f,%.17g,%.17g,%.17g,%.17g,%.17g\n" % (
            syn_mon.t[k] / second, syn_mon.u_S[0][k], syn_mon.x_S[0][k], syn_mon.Gamma_S[0][k],
            astro_mon.C[0][k] / (mole / meter**3), astro_mon.I[0][k] / (mole / meter**3)))
print("releases at", releases.t[:])
