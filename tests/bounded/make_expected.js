// Expected outputs of the bounded-dim test, from ONNX Runtime: the transformer_encoder made
// dynamic (make_model.py) run at three sequence lengths. Writes data/ids_N.bin (int64 token
// ids from a fixed generator) and data/logits_N.bin (float32 [1, N, 1000]) for each N.
// Not part of the build or the tests (they read the committed files); to remake them:
//   python3 tests/bounded/make_model.py ../shared/models /tmp/te_seq.onnx
//   npm install --ignore-scripts onnxruntime-node@1.30.0   (in a temporary folder)
//   NODE_PATH=<that folder>/node_modules node tests/bounded/make_expected.js /tmp/te_seq.onnx
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');

const SIZES = [5, 17, 32];
const VOCAB = 1000;

// A fixed linear congruential generator: the same ids on every machine.
function ids(n, seed) {
  const out = new BigInt64Array(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out[i] = BigInt(x % VOCAB);
  }
  return out;
}

async function main(model) {
  const session = await ort.InferenceSession.create(model,
    { intraOpNumThreads: 1, graphOptimizationLevel: 'all' });
  const dir = path.join(__dirname, 'data');
  fs.mkdirSync(dir, { recursive: true });
  for (const n of SIZES) {
    const input = ids(n, 1234 + n);
    const out = await session.run({ input_ids: new ort.Tensor('int64', input, [1, n]) });
    const logits = out.logits;
    if (logits.dims.join('x') !== `1x${n}x${VOCAB}`) throw new Error(`logits ${logits.dims}`);
    fs.writeFileSync(path.join(dir, `ids_${n}.bin`), Buffer.from(input.buffer));
    fs.writeFileSync(path.join(dir, `logits_${n}.bin`), Buffer.from(logits.data.buffer));
    console.log(`n=${n}: logits[0..3] ${Array.from(logits.data.slice(0, 3))}`);
  }
}

main(process.argv[2]).catch(e => { console.error(e); process.exit(1); });
