"""The benchmark networks in Brian2, as neurograph's bundled specs (specs/cuba.ng, coba.ng,
cobahh.ng, stdp.ng) write them: equations and parameters from Brette et al. 2007 and Song,
Miller & Abbott 2000, as Brian2's examples give them. Each function returns (the group to
monitor, every object of the network); set the device, dt and seed before calling.
Used by suite_brian2.py, cuba_brian2.py and stdp_replay.py."""
from brian2 import (NeuronGroup, PoissonGroup, Synapses, cm, Hz, ms, msiemens, mV, nS,
                    siemens, ufarad, umetre)


def cuba():
    taum, taue, taui = 20 * ms, 5 * ms, 10 * ms
    Vt, Vr, El = -50 * mV, -60 * mV, -49 * mV
    eqs = """
    dv/dt  = (ge+gi-(v-El))/taum : volt (unless refractory)
    dge/dt = -ge/taue : volt
    dgi/dt = -gi/taui : volt
    """
    P = NeuronGroup(4000, eqs, threshold="v>Vt", reset="v = Vr", refractory=5 * ms,
                    method="exact", namespace=locals())
    P.v = "Vr + rand() * (Vt - Vr)"
    we = (60 * 0.27 / 10) * mV
    wi = (-20 * 4.5 / 10) * mV
    Ce = Synapses(P, P, on_pre="ge += we", namespace={"we": we})
    Ci = Synapses(P, P, on_pre="gi += wi", namespace={"wi": wi})
    Ce.connect("i<3200", p=0.02)
    Ci.connect("i>=3200", p=0.02)
    return P, [P, Ce, Ci]


def coba():
    taum, taue, taui = 20 * ms, 5 * ms, 10 * ms
    Vt, Vr, El, Ee, Ei = -50 * mV, -60 * mV, -60 * mV, 0 * mV, -80 * mV
    eqs = """
    dv/dt  = (-(v-El) + ge*(Ee-v) + gi*(Ei-v))/taum : volt (unless refractory)
    dge/dt = -ge/taue : 1
    dgi/dt = -gi/taui : 1
    """
    P = NeuronGroup(4000, eqs, threshold="v>Vt", reset="v = Vr", refractory=5 * ms,
                    method="euler", namespace=locals())
    P.v = "El + (randn() * 5 - 5) * mV"
    P.ge = "randn() * 1.5 + 4"
    P.gi = "randn() * 12 + 20"
    Ce = Synapses(P, P, on_pre="ge += 0.6")
    Ci = Synapses(P, P, on_pre="gi += 6.7")
    Ce.connect("i<3200", p=0.02)
    Ci.connect("i>=3200", p=0.02)
    return P, [P, Ce, Ci]


def cobahh():
    area = 20000 * umetre**2
    Cm = 1 * ufarad * cm**-2 * area
    gl = 5e-5 * siemens * cm**-2 * area
    El, EK, ENa = -60 * mV, -90 * mV, 50 * mV
    g_na = 100 * msiemens * cm**-2 * area
    g_kd = 30 * msiemens * cm**-2 * area
    VT = -63 * mV
    taue, taui = 5 * ms, 10 * ms
    Ee, Ei = 0 * mV, -80 * mV
    we, wi = 6 * nS, 67 * nS
    eqs = """
    dv/dt = (gl*(El-v) + ge*(Ee-v) + gi*(Ei-v) - g_na*(m*m*m)*h*(v-ENa) - g_kd*(n*n*n*n)*(v-EK))/Cm : volt
    dm/dt = alpha_m*(1-m)-beta_m*m : 1
    dn/dt = alpha_n*(1-n)-beta_n*n : 1
    dh/dt = alpha_h*(1-h)-beta_h*h : 1
    dge/dt = -ge*(1./taue) : siemens
    dgi/dt = -gi*(1./taui) : siemens
    alpha_m = 0.32*(mV**-1)*4*mV/exprel((13*mV-v+VT)/(4*mV))/ms : Hz
    beta_m = 0.28*(mV**-1)*5*mV/exprel((v-VT-40*mV)/(5*mV))/ms : Hz
    alpha_h = 0.128*exp((17*mV-v+VT)/(18*mV))/ms : Hz
    beta_h = 4./(1+exp((40*mV-v+VT)/(5*mV)))/ms : Hz
    alpha_n = 0.032*(mV**-1)*5*mV/exprel((15*mV-v+VT)/(5*mV))/ms : Hz
    beta_n = .5*exp((10*mV-v+VT)/(40*mV))/ms : Hz
    """
    P = NeuronGroup(4000, eqs, threshold="v>-20*mV", refractory=3 * ms,
                    method="exponential_euler", namespace=locals())
    P.v = "El + (randn() * 5 - 5) * mV"
    P.ge = "(randn() * 1.5 + 4) * 10. * nS"
    P.gi = "(randn() * 12 + 20) * 10. * nS"
    Ce = Synapses(P, P, on_pre="ge += we", namespace={"we": we})
    Ci = Synapses(P, P, on_pre="gi += wi", namespace={"wi": wi})
    Ce.connect("i<3200", p=0.02)
    Ci.connect("i>=3200", p=0.02)
    return P, [P, Ce, Ci]


# STDP.py's parameters (gmax = 0.01).
STDP_GMAX = 0.01


def stdp(inputs=None):
    """STDP.py's network: `inputs` (default 1000 Poisson sources at 15 Hz) onto one neuron,
    all to all, with event-driven traces. Returns (neuron group, objects, synapses)."""
    taum, taupre, taupost, taue = 10 * ms, 20 * ms, 20 * ms, 5 * ms
    Ee, vt, vr, El = 0 * mV, -54 * mV, -60 * mV, -74 * mV
    gmax = STDP_GMAX
    dApre = 0.01 * gmax
    dApost = -0.01 * taupre / taupost * 1.05 * gmax
    eqs = """
    dv/dt = (ge * (Ee-vr) + El - v) / taum : volt
    dge/dt = -ge / taue : 1
    """
    if inputs is None:
        inputs = PoissonGroup(1000, rates=15 * Hz)
    neurons = NeuronGroup(1, eqs, threshold="v>vt", reset="v = vr", method="exact",
                          namespace=locals())
    S = Synapses(inputs, neurons,
                 """w : 1
                    dApre/dt = -Apre / taupre : 1 (event-driven)
                    dApost/dt = -Apost / taupost : 1 (event-driven)""",
                 on_pre="""ge += w
                    Apre += dApre
                    w = clip(w + Apost, 0, gmax)""",
                 on_post="""Apost += dApost
                    w = clip(w + Apre, 0, gmax)""",
                 namespace=locals())
    S.connect()
    return neurons, [inputs, neurons, S], S
