// Runs ONNX Runtime (CPU) over preprocessed samples and prints top-1 as JSON.
// usage: node ort_eval.js MODEL IMAGES.f32 LABELS.i64 C H W [THREADS]
// IMAGES.f32: raw float32 [N,C,H,W]; LABELS.i64: raw int64 [N] (as mixq's peer tests write them).
const fs = require('fs');
const ort = require('onnxruntime-node');

async function main() {
  const [model, imagesPath, labelsPath, c, h, w, threadsArg] = process.argv.slice(2);
  const C = parseInt(c), H = parseInt(h), W = parseInt(w);
  const buf = fs.readFileSync(imagesPath);
  const images = new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4);
  const lbuf = fs.readFileSync(labelsPath);
  const labels = new BigInt64Array(lbuf.buffer, lbuf.byteOffset, lbuf.length / 8);
  const n = labels.length, per = C * H * W;
  if (images.length !== n * per) throw new Error('image file size does not match labels');
  const session = await ort.InferenceSession.create(model, {
    intraOpNumThreads: parseInt(threadsArg || '2'), interOpNumThreads: 1,
    graphOptimizationLevel: process.env.ORT_OPT_LEVEL || 'all',
    extra: process.env.ORT_NO_QDQ ? { session: { disable_quant_qdq: '1' } } : {},
  });
  const name = session.inputNames[0];
  const batch = 250;
  let correct = 0;
  const predictions = [];
  for (let s = 0; s < n; s += batch) {
    const m = Math.min(batch, n - s);
    const x = new ort.Tensor('float32', images.subarray(s * per, (s + m) * per), [m, C, H, W]);
    const out = await session.run({ [name]: x });
    const logits = out[session.outputNames[0]].data;
    const k = logits.length / m;
    for (let i = 0; i < m; i++) {
      let best = 0;
      for (let j = 1; j < k; j++) if (logits[i * k + j] > logits[i * k + best]) best = j;
      predictions.push(best);
      if (BigInt(best) === labels[s + i]) correct++;
    }
  }
  console.log(JSON.stringify({ samples: n, top1: (100 * correct) / n, predictions }));
}
main().catch((e) => { console.error('ort_eval: ' + e.message); process.exit(1); });
