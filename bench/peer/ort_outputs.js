// Runs ONNX Runtime (CPU) once on one float32 input and prints every output as JSON, so tests
// compare mixq's outputs with ONNX Runtime's element by element.
// usage: node ort_outputs.js MODEL INPUT.f32 DIM [DIM...]
const fs = require('fs');
const ort = require('onnxruntime-node');

async function main() {
  const [model, inputPath, ...dims] = process.argv.slice(2);
  const shape = dims.map((d) => parseInt(d));
  const buf = fs.readFileSync(inputPath);
  const data = new Float32Array(buf.buffer, buf.byteOffset, buf.length / 4);
  const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1 });
  const out = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', data, shape) });
  const result = {};
  for (const name of session.outputNames)
    result[name] = { dims: out[name].dims, data: Array.from(out[name].data, Number) };
  console.log(JSON.stringify(result));
}
main().catch((e) => { console.error('ort_outputs: ' + e.message); process.exit(1); });
