/**
 * The benchmark's baseline: a plain node:https server (same certificate, same TLS floor) that
 * reads the request body and answers a constant AdmissionReview. Whatever kube-canary does on top
 * of this is the cost being measured.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';

const [certFile, keyFile] = process.argv.slice(2);
const answer = JSON.stringify({ apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', response: { uid: 'constant', allowed: true } });
const server = createServer({ cert: readFileSync(certFile!), key: readFileSync(keyFile!), minVersion: 'TLSv1.2' }, (req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(answer);
  });
});
server.keepAliveTimeout = 95_000;
server.listen(0, '127.0.0.1', () => {
  const a = server.address();
  process.stdout.write(`${JSON.stringify({ msg: 'webhook serving', address: `https://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}` })}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
