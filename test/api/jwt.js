// test/api/jwt.js — sign a JWT with HS256 using node's crypto only.
// Usage: node jwt.js SECRET 'JSON-CLAIMS'   (prints the token)
'use strict';
const crypto = require('crypto');

// b64url — base64url without padding (RFC 7515).
const b64url = (buf) => Buffer.from(buf).toString('base64')
  .replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');

const [secret, claims] = process.argv.slice(2);
if (secret === undefined || claims === undefined) {
  console.error('usage: node jwt.js SECRET JSON-CLAIMS');
  process.exit(2);
}
const payload = JSON.parse(claims);
if (payload.iat === undefined) payload.iat = Math.floor(Date.now() / 1000);
if (payload.exp === undefined) payload.exp = payload.iat + 3600;
const signingInput = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' })) + '.' +
  b64url(JSON.stringify(payload));
const signature = crypto.createHmac('sha256', secret).update(signingInput).digest();
process.stdout.write(signingInput + '.' + b64url(signature) + '\n');
