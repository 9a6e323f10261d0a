// Runs ONNX Runtime (CPU) once and prints every output as JSON, so tests compare mixq's outputs
// with ONNX Runtime's element by element.
// usage: node ort_outputs.js MODEL INPUT.f32 DIM [DIM...]          (the first input, float32)
//        node ort_outputs.js MODEL NAME=TYPE:FILE:DIM,DIM... ...     (any inputs; TYPE float32
//                                                                    or int64; raw little-endian)
// ORT_NO_QDQ=1 turns ONNX Runtime's QDQ fusions off, so Q/DQ nodes keep their ONNX semantics.
const fs = require('fs');
const ort = require('onnxruntime-node');

function tensor(type, path, shape) {
  const buf = fs.readFileSync(path);
  const copy = buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.length);
  if (type === 'float32') return new ort.Tensor('float32', new Float32Array(copy), shape);
  if (type === 'int64') return new ort.Tensor('int64', new BigInt64Array(copy), shape);
  throw new Error('unsupported input type ' + type);
}

async function main() {
  const [model, ...rest] = process.argv.slice(2);
  const session = await ort.InferenceSession.create(model, {
    intraOpNumThreads: 1,
    extra: process.env.ORT_NO_QDQ ? { session: { disable_quant_qdq: '1' } } : {},
  });
  const feeds = {};
  if (rest.length > 0 && rest[0].includes('=')) {
    for (const arg of rest) {
      const [name, spec] = [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)];
      const [type, path, dims] = spec.split(':');
      feeds[name] = tensor(type, path, dims === '' ? [] : dims.split(',').map((d) => parseInt(d)));
    }
  } else {
    const [inputPath, ...dims] = rest;
    feeds[session.inputNames[0]] = tensor('float32', inputPath, dims.map((d) => parseInt(d)));
  }
  const out = await session.run(feeds);
  const result = {};
  for (const name of session.outputNames)
    result[name] = { dims: out[name].dims, data: Array.from(out[name].data, Number) };
  console.log(JSON.stringify(result));
}
main().catch((e) => { console.error('ort_outputs: ' + e.message); process.exit(1); });
