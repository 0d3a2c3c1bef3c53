// Fixed-rate load with autocannon: `node fixed_rate.mjs URL PATH RATE SECONDS [TOKENS_FILE] [METHOD]`.
// With a tokens file, each request carries a bearer token drawn at random from it (GET) or a
// {"token": ...} body (POST). Prints one line: FIXED_JSON {...} with latency percentiles in ms.
import autocannon from 'autocannon';
import { readFileSync } from 'node:fs';

const [url, path, rate, seconds, tokensFile, method = 'GET'] = process.argv.slice(2);
const tokens = tokensFile ? readFileSync(tokensFile, 'utf8').split('\n').filter(Boolean) : [];
const pick = () => tokens[Math.floor(Math.random() * tokens.length)];

const request = { method, path };
if (tokens.length) {
  request.setupRequest = (req) => {
    if (method === 'GET') {
      req.headers = { authorization: `Bearer ${pick()}` };
    } else {
      req.headers = { 'content-type': 'application/json' };
      req.body = JSON.stringify({ token: pick() });
    }
    return req;
  };
}

const result = await autocannon({
  url,
  connections: 32,
  overallRate: Number(rate),
  duration: Number(seconds),
  requests: [request],
});
const l = result.latency;
console.log('FIXED_JSON ' + JSON.stringify({
  requests: result.requests.total,
  rate_target: Number(rate),
  per_second: result.requests.average,
  p50_ms: l.p50, p90_ms: l.p90, p99_ms: l.p99, max_ms: l.max,
  errors: result.errors, timeouts: result.timeouts, non2xx: result.non2xx,
}));
