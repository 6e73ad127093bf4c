//! Generated event code (see `codegen::deliver` for the semantics): `on pre` / `on post`
//! statements, cell event bodies and coupling sums as one function each.

use std::collections::HashMap;

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, InstBuilder, MemFlagsData, Value};
use cranelift_frontend::FunctionBuilder;
use cranelift_module::Module;

use super::{open_kernel, FuncRefs, Slot, Translator};
use crate::codegen::abi::{ColumnArg, DeliveryArgsValues, DeliveryFn, PartArg};
use crate::codegen::{
    delivery_columns, inputs_of, CodegenError, ColumnMode, DeliveryKey, EventCode, InputKey,
};
use crate::ir::*;
use crate::AssignOp;

pub struct DeliveryKernel {
    pub func: DeliveryFn,
}

/// A part's fields, loaded once before the loop.
#[derive(Clone, Copy)]
pub(super) struct Part {
    base: Value,
    bias: Value,
    /// `None`: 1 (every part is a column, known when compiling).
    stride: Option<Value>,
    end: Value,
}

/// The address of endpoint index `j`: the fields of the part holding `j` chosen by a chain of
/// selects (parts are in endpoint order), then `base + 8 (j + bias) stride`.
pub(super) fn part_address(b: &mut FunctionBuilder, parts: &[Part], j: Value) -> Value {
    let mut p = parts[0];
    for w in parts.windows(2) {
        let beyond = b.ins().icmp(IntCC::UnsignedGreaterThanOrEqual, j, w[0].end);
        p = Part {
            base: b.ins().select(beyond, w[1].base, p.base),
            bias: b.ins().select(beyond, w[1].bias, p.bias),
            stride: match (w[1].stride, p.stride) {
                (Some(x), Some(y)) => Some(b.ins().select(beyond, x, y)),
                _ => None,
            },
            end: w[1].end,
        };
    }
    let mut k = b.ins().iadd(j, p.bias);
    if let Some(stride) = p.stride {
        k = b.ins().imul(k, stride);
    }
    let off = b.ins().ishl_imm_u(k, 3);
    b.ins().iadd(p.base, off)
}

impl<M: Module> super::Codegen<M> {
    pub(super) fn translate_delivery(
        &mut self,
        model: &Model,
        key: &DeliveryKey,
    ) -> Result<cranelift_module::FuncId, CodegenError> {
        let stmts = key.code.statements(model);
        let stmts = &stmts[..];
        let columns = delivery_columns(model, stmts)
            .ok_or_else(|| "event code is not compilable".to_string())?;
        if columns.len() != key.modes.len() {
            return Err(CodegenError(
                "delivery key modes do not match its columns".to_string(),
            ));
        }
        for st in stmts {
            let s = columns.iter().position(|c| *c == (st.var, st.side));
            // (Never a shared value: the kernel would write a copy of it.)
            if let Some(ColumnMode::Scalar | ColumnMode::SharedParts(_)) = s.map(|s| key.modes[s]) {
                return Err(CodegenError(
                    "a written variable must be a column".to_string(),
                ));
            }
        }
        // Rows mode: `on pre` only, and every post-side column a column in each part.
        let post_modes: Vec<ColumnMode> = columns
            .iter()
            .zip(&key.modes)
            .filter(|(c, _)| c.1 == Side::Post)
            .map(|(_, m)| *m)
            .collect();
        if key.rows
            && (!matches!(
                key.code,
                EventCode::OnPre(_) | EventCode::Coupling { .. } | EventCode::OnStep(_)
            ) || post_modes
                .iter()
                .any(|m| !matches!(m, ColumnMode::Parts(_)) || *m != post_modes[0]))
        {
            return Err(CodegenError(
                "rows mode needs `on pre` code with post-side columns".to_string(),
            ));
        }
        let (ptr, frontend_config) = self.start_function(None);
        let name = self.name("deliver");
        {
            let mut b = FunctionBuilder::new(&mut self.ctx.func, &mut self.fctx);
            let refs = FuncRefs::declare(&mut self.module, &self.helper_ids, b.func);
            let ([first, _, exit], args) = open_kernel(&mut b);
            let flags = MemFlagsData::trusted();
            let DeliveryArgsValues {
                n,
                due,
                columns: cols,
                pre_idx,
                post_idx,
                t,
                step,
                node_key,
                seed,
                size,
                scratch,
                row_ptr,
                row_first,
                post_from,
                post_to,
            } = DeliveryArgsValues::load(&mut b, args, ptr);
            // Every column's pointers and part fields, loaded once.
            let slots: Vec<Slot> = columns
                .iter()
                .zip(&key.modes)
                .enumerate()
                .map(|(c, (&(_, side), mode))| {
                    let column = ColumnArg::AT;
                    match mode {
                        ColumnMode::Scalar => {
                            let p = column.ptr.load_in(&mut b, cols, c, ptr);
                            Slot::Scalar(b.ins().load(types::F64, flags, p, 0))
                        }
                        ColumnMode::Element => {
                            Slot::Element(column.ptr.load_in(&mut b, cols, c, ptr))
                        }
                        ColumnMode::Element32 => {
                            Slot::Element32(column.ptr.load_in(&mut b, cols, c, ptr))
                        }
                        ColumnMode::Parts(k) | ColumnMode::SharedParts(k) => {
                            let shared = matches!(mode, ColumnMode::SharedParts(_));
                            let table = column.parts.load_in(&mut b, cols, c, ptr);
                            let part = PartArg::AT;
                            let parts = (0..*k as usize)
                                .map(|q| Part {
                                    base: part.base.load_in(&mut b, table, q, ptr),
                                    bias: part.bias.load_in(&mut b, table, q, ptr),
                                    stride: shared
                                        .then(|| part.stride.load_in(&mut b, table, q, ptr)),
                                    end: part.end.load_in(&mut b, table, q, ptr),
                                })
                                .collect();
                            let index = if side == Side::Pre { pre_idx } else { post_idx };
                            Slot::Parts(index, parts)
                        }
                    }
                })
                .collect();
            // Rows mode: per part of the post endpoint, the slots with post-side columns read
            // from that part directly (a gather with the part's bias), and the parts' ends.
            let post_parts: Option<Vec<Part>> =
                columns.iter().zip(&slots).find_map(|(c, sl)| match sl {
                    Slot::Parts(_, parts) if c.1 == Side::Post => Some(parts.clone()),
                    _ => None,
                });
            let part_slots: Vec<Vec<Slot>> = match (&post_parts, key.rows) {
                (Some(parts), true) => parts
                    .iter()
                    .enumerate()
                    .map(|(q, _)| {
                        columns
                            .iter()
                            .zip(&slots)
                            .map(|(c, sl)| match sl {
                                Slot::Parts(index, parts) if c.1 == Side::Post => {
                                    Slot::Gather(parts[q].base, *index, parts[q].bias)
                                }
                                other => other.clone(),
                            })
                            .collect()
                    })
                    .collect(),
                _ => vec![slots.clone()],
            };
            let part_ends: Vec<Value> = post_parts.iter().flatten().map(|p| p.end).collect();
            b.ins().jump(first, &[]);
            // One or two loops per statement; `first` starts the first, `exit` follows the last.
            let mut entry = first;
            for (k, st) in stmts.iter().enumerate() {
                let target = columns
                    .iter()
                    .position(|c| *c == (st.var, st.side))
                    .expect("targets are columns");
                let mut reads = Vec::new();
                inputs_of(model, st.value, &mut reads);
                // Own-side reads of an own variable see only the element being written.
                let in_place = reads
                    .iter()
                    .all(|&(v, s)| v != st.var || (s == Side::Own && st.side == Side::Own));
                let after = if k + 1 == stmts.len() {
                    exit
                } else {
                    b.create_block()
                };
                let env = LoopEnv {
                    synapses: key.code.synapses(),
                    model,
                    refs: &refs,
                    columns: &columns,
                    slots: &slots,
                    part_slots: &part_slots,
                    rows: key.rows.then_some((row_ptr, &part_ends[..])),
                    runs: key.runs.then_some(Runs {
                        row_first,
                        post_from,
                        post_to,
                        target,
                    }),
                    due,
                    pre_idx,
                    post_idx,
                    t,
                    step,
                    node_key,
                    seed,
                    size,
                    n,
                };
                // Two synapses at a time on `f64x2` lanes: over runs, where the statement
                // writes a synapse column or a post-side one (each synapse its own element).
                let lanes = key.runs
                    && in_place
                    && st.side != Side::Pre
                    && super::on_lanes(model, st.value, true);
                let write = |b: &mut FunctionBuilder, at: &At, v: Value| {
                    let (e, i, sl) = (at.e, at.i, at.slots);
                    if let Slot::Element32(p) = sl[target] {
                        // Read widened, computed in f64, stored narrowed: the rounding an f32
                        // model's write makes anyway.
                        let old = super::load_f32_widened(b, p, e, at.lanes);
                        let new = assign(b, st.op, old, v);
                        super::store_f32_narrowed(b, p, e, new, at.lanes);
                        return;
                    }
                    let addr = match &sl[target] {
                        Slot::Element(p) => {
                            let off = b.ins().ishl_imm_u(e, 3);
                            b.ins().iadd(*p, off)
                        }
                        Slot::Gather(p, index, bias) => {
                            let off = b.ins().ishl_imm_u(e, 2);
                            let a = b.ins().iadd(*index, off);
                            let j = b.ins().uload32(flags, a, 0);
                            let j = b.ins().iadd(j, *bias);
                            let off = b.ins().ishl_imm_u(j, 3);
                            b.ins().iadd(*p, off)
                        }
                        Slot::Parts(index, parts) => {
                            let j = match i {
                                Some(i) if *index == pre_idx => i,
                                _ => {
                                    let off = b.ins().ishl_imm_u(e, 2);
                                    let a = b.ins().iadd(*index, off);
                                    b.ins().uload32(flags, a, 0)
                                }
                            };
                            part_address(b, parts, j)
                        }
                        _ => unreachable!("checked: targets are columns"),
                    };
                    // (Lanes of two synapses need not be 16-byte aligned.)
                    let (ty, flags) = if at.lanes {
                        (types::F64X2, MemFlagsData::new().with_notrap())
                    } else {
                        (types::F64, flags)
                    };
                    let old = b.ins().load(ty, flags, addr, 0);
                    let mut new = assign(b, st.op, old, v);
                    if key.f32_state {
                        new = if at.lanes {
                            let narrow = b.ins().fvdemote(new);
                            b.ins().fvpromote_low(narrow)
                        } else {
                            let narrow = b.ins().fdemote(types::F32, new);
                            b.ins().fpromote(types::F64, narrow)
                        };
                    }
                    b.ins().store(flags, new, addr, 0);
                };
                if in_place {
                    env.each(&mut b, entry, after, lanes, |b, at| {
                        let v = env.value(b, at, st.value);
                        write(b, at, v);
                    });
                } else {
                    let second = b.create_block();
                    env.each(&mut b, entry, second, false, |b, at| {
                        let v = env.value(b, at, st.value);
                        let off = b.ins().ishl_imm_u(at.k, 3);
                        let addr = b.ins().iadd(scratch, off);
                        b.ins().store(flags, v, addr, 0);
                    });
                    env.each(&mut b, second, after, false, |b, at| {
                        let off = b.ins().ishl_imm_u(at.k, 3);
                        let addr = b.ins().iadd(scratch, off);
                        let v = b.ins().load(types::F64, flags, addr, 0);
                        write(b, at, v);
                    });
                }
                entry = after;
            }
            if stmts.is_empty() {
                b.switch_to_block(first);
                b.ins().jump(exit, &[]);
            }
            b.switch_to_block(exit);
            b.ins().return_(&[]);
            b.seal_all_blocks();
            b.finalize(frontend_config);
        }
        self.define(&name)
    }
}

/// The value `old op= v` stores (`v` itself for `=`).
fn assign(b: &mut FunctionBuilder, op: AssignOp, old: Value, v: Value) -> Value {
    match op {
        AssignOp::Set => v,
        AssignOp::Add => b.ins().fadd(old, v),
        AssignOp::Sub => b.ins().fsub(old, v),
        AssignOp::Mul => b.ins().fmul(old, v),
        AssignOp::Div => b.ins().fdiv(old, v),
    }
}

/// What the loops of a delivery kernel share.
struct LoopEnv<'a> {
    synapses: bool,
    model: &'a Model,
    refs: &'a FuncRefs,
    columns: &'a [InputKey],
    /// The slots as loaded (endpoint columns through their parts).
    slots: &'a [Slot],
    /// The slots per post part (one entry outside rows mode).
    part_slots: &'a [Vec<Slot>],
    /// Rows mode: the row pointers and the ends of the post parts.
    rows: Option<(Value, &'a [Value])>,
    /// Runs mode: the statement's loop over runs.
    runs: Option<Runs>,
    due: Value,
    pre_idx: Value,
    post_idx: Value,
    t: Value,
    step: Value,
    node_key: Value,
    seed: Value,
    size: Value,
    n: Value,
}

/// What a loop over runs needs: each row's first post index, the window of post indices of
/// this call, and the column the statement writes.
#[derive(Clone, Copy)]
struct Runs {
    row_first: Value,
    post_from: Value,
    post_to: Value,
    target: usize,
}

/// Where a loop body is: the position `k` among the due elements (scratch index), the element
/// (synapse) `e`, its presynaptic index when the loop knows it, the slots to read, the post
/// shift of runs mode (`Translator::post_shift`), and whether it covers `e` and `e + 1` on
/// lanes.
struct At<'s> {
    k: Value,
    e: Value,
    i: Option<Value>,
    slots: &'s [Slot],
    shift: Option<Value>,
    lanes: bool,
}

impl LoopEnv<'_> {
    /// A loop over the due synapses starting in block `entry` and continuing to `after`; the
    /// body is emitted once per post part in rows mode, and in runs mode with `lanes` also
    /// once on lanes (two synapses of the same part).
    fn each(
        &self,
        b: &mut FunctionBuilder,
        entry: cranelift_codegen::ir::Block,
        after: cranelift_codegen::ir::Block,
        lanes: bool,
        mut body: impl FnMut(&mut FunctionBuilder, &At),
    ) {
        let flags = MemFlagsData::trusted();
        let Some((row_ptr, ends)) = self.rows else {
            let (header, blk) = (b.create_block(), b.create_block());
            b.append_block_param(header, types::I64);
            b.switch_to_block(entry);
            let zero = b.ins().iconst(types::I64, 0);
            b.ins().jump(header, &[zero.into()]);
            b.switch_to_block(header);
            let kv = b.block_params(header)[0];
            let more = b.ins().icmp(IntCC::UnsignedLessThan, kv, self.n);
            b.ins().brif(more, blk, &[], after, &[]);
            b.switch_to_block(blk);
            let off = b.ins().ishl_imm_u(kv, 2);
            let addr = b.ins().iadd(self.due, off);
            let e = b.ins().uload32(flags, addr, 0);
            let at = At {
                k: kv,
                e,
                i: None,
                slots: &self.part_slots[0],
                shift: None,
                lanes: false,
            };
            body(b, &at);
            let next = b.ins().iadd_imm_s(kv, 1);
            b.ins().jump(header, &[next.into()]);
            return;
        };
        // Rows: r over the spiking sources, s over the row's synapses, k counting them all;
        // within a row the synapses of post part q come before those of part q + 1.
        let (r_var, s_var, k_var, hi_var, i_var) = (
            b.declare_var(types::I64),
            b.declare_var(types::I64),
            b.declare_var(types::I64),
            b.declare_var(types::I64),
            b.declare_var(types::I64),
        );
        let parts = ends.len().max(1);
        let (rheader, rstart, rlatch) = (b.create_block(), b.create_block(), b.create_block());
        let heads: Vec<_> = (0..parts).map(|_| b.create_block()).collect();
        b.switch_to_block(entry);
        let zero = b.ins().iconst(types::I64, 0);
        b.def_var(r_var, zero);
        b.def_var(k_var, zero);
        b.ins().jump(rheader, &[]);
        b.switch_to_block(rheader);
        let r = b.use_var(r_var);
        let more = b.ins().icmp(IntCC::UnsignedLessThan, r, self.n);
        b.ins().brif(more, rstart, &[], after, &[]);
        b.switch_to_block(rstart);
        let off = b.ins().ishl_imm_u(r, 2);
        let addr = b.ins().iadd(self.due, off);
        let i = b.ins().uload32(flags, addr, 0);
        let off = b.ins().ishl_imm_u(i, 2);
        let addr = b.ins().iadd(row_ptr, off);
        let lo = b.ins().uload32(flags, addr, 0);
        let hi = b.ins().uload32(flags, addr, 4);
        b.def_var(s_var, lo);
        b.def_var(hi_var, hi);
        // Every synapse of the row has the row's source as its presynaptic index.
        b.def_var(i_var, i);
        if let Some(runs) = self.runs {
            let addr = b.ins().iadd(runs.row_first, off);
            let j0 = b.ins().uload32(flags, addr, 0);
            let shift = b.ins().isub(j0, lo);
            // The row's synapses whose post index lies in the call's window.
            let from = b.ins().isub(runs.post_from, shift);
            let from = b.ins().smax(lo, from);
            let from = b.ins().smin(from, hi);
            let to = b.ins().isub(runs.post_to, shift);
            let to = b.ins().smin(hi, to);
            let to = b.ins().smax(to, from);
            b.def_var(s_var, from);
            b.def_var(hi_var, to);
            let slots = self.run_slots(b, i, shift, runs.target, parts);
            b.ins().jump(heads[0], &[]);
            for q in 0..parts {
                let next = heads.get(q + 1).copied().unwrap_or(rlatch);
                b.switch_to_block(heads[q]);
                let sv = b.use_var(s_var);
                let hi = b.use_var(hi_var);
                // Part q's synapses: up to the one whose post index reaches the part's end.
                let end = if q + 1 < parts {
                    let limit = b.ins().isub(ends[q], shift);
                    let from = b.ins().smax(sv, limit);
                    b.ins().smin(from, hi)
                } else {
                    hi
                };
                let (shead, sbody) = (b.create_block(), b.create_block());
                let mut run = |b: &mut FunctionBuilder, head, blk, width: i64, exit| {
                    b.switch_to_block(head);
                    let sv = b.use_var(s_var);
                    let last = b.ins().iadd_imm_s(sv, width);
                    let fits = b.ins().icmp(IntCC::SignedLessThanOrEqual, last, end);
                    b.ins().brif(fits, blk, &[], exit, &[]);
                    b.switch_to_block(blk);
                    let (sv, kv) = (b.use_var(s_var), b.use_var(k_var));
                    let at = At {
                        k: kv,
                        e: sv,
                        i: Some(i),
                        slots: &slots[q],
                        shift: Some(shift),
                        lanes: width == 2,
                    };
                    body(b, &at);
                    let s1 = b.ins().iadd_imm_s(sv, width);
                    let k1 = b.ins().iadd_imm_s(kv, width);
                    b.def_var(s_var, s1);
                    b.def_var(k_var, k1);
                    b.ins().jump(head, &[]);
                };
                // (Still in block `heads[q]`.)
                if lanes {
                    let (vhead, vbody) = (b.create_block(), b.create_block());
                    b.ins().jump(vhead, &[]);
                    run(b, vhead, vbody, 2, shead);
                } else {
                    b.ins().jump(shead, &[]);
                }
                run(b, shead, sbody, 1, next);
            }
        } else {
            b.ins().jump(heads[0], &[]);
            for q in 0..parts {
                let next = heads.get(q + 1).copied().unwrap_or(rlatch);
                let blk = b.create_block();
                b.switch_to_block(heads[q]);
                let sv = b.use_var(s_var);
                let hi = b.use_var(hi_var);
                let in_row = b.ins().icmp(IntCC::UnsignedLessThan, sv, hi);
                if q + 1 < parts {
                    // Still in part q while the post index is below the part's end.
                    let check = b.create_block();
                    b.ins().brif(in_row, check, &[], next, &[]);
                    b.switch_to_block(check);
                    let off = b.ins().ishl_imm_u(sv, 2);
                    let addr = b.ins().iadd(self.post_idx, off);
                    let j = b.ins().uload32(flags, addr, 0);
                    let in_part = b.ins().icmp(IntCC::UnsignedLessThan, j, ends[q]);
                    b.ins().brif(in_part, blk, &[], next, &[]);
                } else {
                    b.ins().brif(in_row, blk, &[], next, &[]);
                }
                b.switch_to_block(blk);
                let sv = b.use_var(s_var);
                let kv = b.use_var(k_var);
                let iv = b.use_var(i_var);
                let at = At {
                    k: kv,
                    e: sv,
                    i: Some(iv),
                    slots: &self.part_slots[q],
                    shift: None,
                    lanes: false,
                };
                body(b, &at);
                let s1 = b.ins().iadd_imm_s(sv, 1);
                let k1 = b.ins().iadd_imm_s(kv, 1);
                b.def_var(s_var, s1);
                b.def_var(k_var, k1);
                b.ins().jump(heads[q], &[]);
            }
        }
        b.switch_to_block(rlatch);
        let r = b.use_var(r_var);
        let r1 = b.ins().iadd_imm_s(r, 1);
        b.def_var(r_var, r1);
        b.ins().jump(rheader, &[]);
    }

    /// The slots of one row over runs, per post part: a post-side column as an element column
    /// indexed by synapse (its part's base moved by the row's shift), a presynaptic value read
    /// once for the row (unless the statement writes it), the rest as loaded.
    fn run_slots(
        &self,
        b: &mut FunctionBuilder,
        i: Value,
        shift: Value,
        target: usize,
        parts: usize,
    ) -> Vec<Vec<Slot>> {
        let flags = MemFlagsData::trusted();
        let row: Vec<Slot> = self
            .columns
            .iter()
            .zip(self.slots)
            .enumerate()
            .map(|(c, (col, sl))| match sl {
                Slot::Parts(_, ps) if col.1 == Side::Pre && c != target => {
                    let addr = part_address(b, ps, i);
                    Slot::Scalar(b.ins().load(types::F64, flags, addr, 0))
                }
                other => other.clone(),
            })
            .collect();
        (0..parts)
            .map(|q| {
                self.columns
                    .iter()
                    .zip(&row)
                    .map(|(col, sl)| match sl {
                        Slot::Parts(_, ps) if col.1 == Side::Post => {
                            let k = b.ins().iadd(ps[q].bias, shift);
                            let off = b.ins().ishl_imm_u(k, 3);
                            Slot::Element(b.ins().iadd(ps[q].base, off))
                        }
                        other => other.clone(),
                    })
                    .collect()
            })
            .collect()
    }

    /// The value of `expr` at `at`.
    fn value(&self, b: &mut FunctionBuilder, at: &At, expr: Handle<Expr>) -> Value {
        let mut tr = Translator {
            model: self.model,
            b,
            refs: self.refs,
            inputs: self.columns,
            slots: at.slots,
            e: at.e,
            pre_idx: self.pre_idx,
            post_idx: self.post_idx,
            pre_i: at.i,
            post_shift: at.shift,
            synapses: self.synapses,
            t: self.t,
            step: self.step,
            node_key: self.node_key,
            seed: self.seed,
            size: self.size,
            memo: HashMap::new(),
            vector: at.lanes,
        };
        tr.expr(expr)
    }
}
