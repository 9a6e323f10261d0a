// Times ONNX Runtime (CPU) on one model at one batch size; prints one JSON line.
// usage: node ort_bench.js MODEL BATCH THREADS SECONDS
const ort = require('onnxruntime-node');

async function main() {
  const [model, batchArg, threadsArg, secondsArg] = process.argv.slice(2);
  const batch = parseInt(batchArg || '1'), threads = parseInt(threadsArg || '2');
  const seconds = parseFloat(secondsArg || '5');
  const session = await ort.InferenceSession.create(model, {
    intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  const name = session.inputNames[0];
  const meta = session.inputMetadata ? session.inputMetadata[0] : null;
  let dims = meta && meta.shape ? meta.shape.map((d) => (typeof d === 'number' ? d : batch)) : null;
  if (!dims) dims = [batch, 3, 32, 32];
  dims[0] = batch;
  const n = dims.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  let s = 12345;  // fixed LCG so every run feeds the same input
  for (let i = 0; i < n; i++) { s = (s * 1103515245 + 12345) % 2147483648; data[i] = s / 2147483648 - 0.5; }
  const feeds = { [name]: new ort.Tensor('float32', data, dims) };
  for (let i = 0; i < 3; i++) await session.run(feeds);
  let runs = 0;
  const t0 = process.hrtime.bigint();
  let elapsed = 0;
  while (elapsed < seconds || runs < 3) {
    await session.run(feeds);
    runs++;
    elapsed = Number(process.hrtime.bigint() - t0) / 1e9;
  }
  console.log(JSON.stringify({ peer: 'onnxruntime-node ' + require('onnxruntime-node/package.json').version,
    batch, threads, runs, seconds: elapsed, images_per_s: (runs * batch) / elapsed }));
}
main().catch((e) => { console.error('ort_bench: ' + e.message); process.exit(1); });
