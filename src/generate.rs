//! Text generation with a language-model spec (`neurograph generate`): the prompt's tokens
//! are fed one per step to the model's token input, then the next token is chosen from the
//! logits the step ends with (greedy, or sampled with a temperature and top-k from the
//! simulation's seeded random streams) and fed back, so the recurrent state carries the whole
//! text: the cost is linear in its length.

use std::time::Instant;

use neurograph_runtime::rng::Stream;

use crate::simulation::{Error, Model, Simulation};

/// How to continue a prompt.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    pub prompt: Vec<u32>,
    /// Tokens to generate after the prompt.
    pub tokens: u64,
    /// 0: greedy (the most likely token; the first of equals).
    pub temperature: f64,
    /// Sample among the `k` most likely tokens only.
    pub top_k: Option<usize>,
    /// The token input (default: the model's only one).
    pub input: Option<String>,
    /// The logits as `POPULATION.VARIABLE` (default: the only population with a `logit`).
    pub logits: Option<String>,
}

/// What a generation did.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateSummary {
    pub generated: Vec<u32>,
    /// Wall-clock seconds of the prompt's steps and of the generated ones.
    pub prompt_seconds: f64,
    pub generate_seconds: f64,
}

/// The random stream sampling draws from (apart from the model's own streams).
const SAMPLE_STREAM: u32 = 0x5a4d_504c;

/// The token to continue with: the most likely, or one drawn from softmax(logits / T)
/// restricted to the `top_k` most likely, with uniform `u` in [0, 1).
pub fn choose(logits: &[f64], temperature: f64, top_k: Option<usize>, u: f64) -> usize {
    if temperature <= 0.0 || logits.is_empty() {
        // Greedy: the first of the largest (no sort).
        return (0..logits.len())
            .reduce(|best, i| {
                if logits[i].total_cmp(&logits[best]).is_gt() {
                    i
                } else {
                    best
                }
            })
            .unwrap_or(0);
    }
    let mut order: Vec<usize> = (0..logits.len()).collect();
    // Most likely first; equal logits in index order.
    order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
    let k = top_k.unwrap_or(order.len()).clamp(1, order.len());
    let top = logits[order[0]];
    let weights: Vec<f64> = order[..k]
        .iter()
        .map(|&i| ((logits[i] - top) / temperature).exp())
        .collect();
    let total: f64 = weights.iter().sum();
    let mut acc = 0.0;
    for (w, &i) in weights.iter().zip(&order) {
        acc += w / total;
        if u < acc {
            return i;
        }
    }
    order[k - 1]
}

/// Feed `options.prompt` to `sim`, then generate `options.tokens` tokens, calling `emit`
/// with each as it is chosen.
pub fn generate(
    sim: &mut Simulation,
    options: &GenerateOptions,
    emit: &mut dyn FnMut(u32),
) -> Result<GenerateSummary, Error> {
    let model = sim.model().clone();
    let input = token_input_name(&model, options.input.as_deref())?;
    let (pop, var) = match &options.logits {
        Some(l) => l
            .split_once('.')
            .map(|(p, v)| (p.to_string(), v.to_string()))
            .ok_or_else(|| Error::Value(format!("--logits {l}: write POPULATION.VARIABLE")))?,
        None => (only_logit_population(&model)?, "logit".to_string()),
    };
    if options.prompt.is_empty() {
        return Err(Error::Value(
            "the prompt is empty: the first token comes from the logits of a step".into(),
        ));
    }
    let t0 = Instant::now();
    for &tok in &options.prompt {
        sim.set_token(&input, Some(tok))?;
        sim.step(1)?;
    }
    let prompt_seconds = t0.elapsed().as_secs_f64();
    let stream = Stream::new(sim.seed(), SAMPLE_STREAM);
    let t1 = Instant::now();
    let mut generated = Vec::new();
    for k in 0..options.tokens {
        let logits = sim.state(&pop, &var)?.into_owned();
        let u = stream.uniform(0, k, 0);
        let next = choose(&logits, options.temperature, options.top_k, u) as u32;
        emit(next);
        generated.push(next);
        if k + 1 < options.tokens {
            sim.set_token(&input, Some(next))?;
            sim.step(1)?;
        }
    }
    Ok(GenerateSummary {
        generated,
        prompt_seconds,
        generate_seconds: t1.elapsed().as_secs_f64(),
    })
}

/// The token input `generate` feeds: the one named, or the model's only one.
pub fn token_input_name(model: &Model, named: Option<&str>) -> Result<String, Error> {
    if let Some(name) = named {
        return Ok(name.to_string());
    }
    match model.token_inputs().as_slice() {
        [one] => Ok(one.to_string()),
        [] => Err(Error::Value(
            "the model has no token input (`input T = tokens(\"text.txt\", vocab = 256)`) to feed the prompt to".into(),
        )),
        more => Err(Error::Value(format!(
            "the model has {} token inputs ({}): name one with --input",
            more.len(),
            more.join(", ")
        ))),
    }
}

fn only_logit_population(model: &Model) -> Result<String, Error> {
    let m = &model.compiled().model;
    let names: Vec<&str> = m
        .populations
        .iter()
        .filter(|(_, p)| {
            m.cell_types[p.cell_type]
                .states
                .iter()
                .any(|&v| m.variables[v].name == "logit")
        })
        .map(|(_, p)| p.name.as_str())
        .collect();
    match names.as_slice() {
        [one] => Ok(one.to_string()),
        [] => Err(Error::Value(
            "no population has a state `logit`: name the logits with --logits POPULATION.VARIABLE"
                .into(),
        )),
        more => Err(Error::Value(format!(
            "{} populations have a state `logit` ({}): name one with --logits POPULATION.logit",
            more.len(),
            more.join(", ")
        ))),
    }
}

/// Simulate `model` (seed `seed`, or the spec's) continuing `options.prompt`.
pub fn run(
    model: &Model,
    seed: Option<u64>,
    threads: usize,
    options: &GenerateOptions,
    emit: &mut dyn FnMut(u32),
) -> Result<GenerateSummary, Error> {
    let mut builder = model.simulation().threads(threads);
    if let Some(s) = seed {
        builder = builder.seed(s);
    }
    let mut sim = builder.build()?;
    generate(&mut sim, options, emit)
}

#[cfg(test)]
mod tests {
    use super::choose;

    #[test]
    fn greedy_takes_the_first_most_likely_and_sampling_follows_the_weights() {
        let l = [0.5, 2.0, 2.0, -1.0];
        assert_eq!(choose(&l, 0.0, None, 0.3), 1);
        // Top-1 sampling is greedy.
        assert_eq!(choose(&l, 1.0, Some(1), 0.99), 1);
        // Top-2 at temperature 1: tokens 1 and 2, equally likely.
        assert_eq!(choose(&l, 1.0, Some(2), 0.49), 1);
        assert_eq!(choose(&l, 1.0, Some(2), 0.51), 2);
        // The whole distribution: token 3 has exp(-3) / Z of the mass, the last slice.
        let z: f64 = l.iter().map(|x| (x - 2.0f64).exp()).sum();
        assert_eq!(choose(&l, 1.0, None, 1.0 - 0.5 * (-3.0f64).exp() / z), 3);
    }
}
