#!/usr/bin/env node
// Merges an OpenAPI fragment (tags, paths, components.*) into openapi.yaml, refusing duplicates.
// usage: node scripts/merge-openapi-fragment.js openapi/<fragment>.yaml
const fs = require('node:fs');
const path = require('node:path');
const YAML = require('yaml');

const root = path.resolve(__dirname, '..', 'openapi.yaml');
const doc = YAML.parseDocument(fs.readFileSync(root, 'utf8'));
const frag = YAML.parse(fs.readFileSync(process.argv[2], 'utf8'));
const main = doc.toJS();
for (const t of frag.tags ?? []) {
  if ((main.tags ?? []).some((x) => x.name === t.name)) throw new Error(`tag ${t.name} exists`);
  doc.addIn(['tags'], t);
}
for (const [p, ops] of Object.entries(frag.paths ?? {})) {
  if (main.paths?.[p]) throw new Error(`path ${p} exists`);
  doc.setIn(['paths', p], ops);
}
for (const [section, entries] of Object.entries(frag.components ?? {})) {
  for (const [name, value] of Object.entries(entries)) {
    if (main.components?.[section]?.[name]) throw new Error(`components.${section}.${name} exists`);
    doc.setIn(['components', section, name], value);
  }
}
fs.writeFileSync(root, doc.toString({ lineWidth: 0, flowCollectionPadding: false }));
process.stdout.write(`merged ${process.argv[2]} into openapi.yaml\n`);
