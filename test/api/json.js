// test/api/json.js — read a JSON document on stdin and print one value of it.
// Usage: node json.js 'EXPRESSION'   (r is the document; strings print raw,
// undefined prints nothing, anything else prints as JSON)
'use strict';
let text = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk) => { text += chunk; });
process.stdin.on('end', () => {
  let r;
  try { r = JSON.parse(text); } catch (e) { process.stdout.write('NOT-JSON\n'); return; }
  // eslint-disable-next-line no-new-func
  const value = new Function('r', `return (${process.argv[2]});`)(r);
  if (value === undefined) return;
  process.stdout.write((typeof value === 'string' ? value : JSON.stringify(value)) + '\n');
});
