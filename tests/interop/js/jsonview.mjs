// The JSON view as Yjs itself gives it: `doc.get(name, Type).toJSON()` for each root.
//
// stdin: {"docs": [{"update": hex, "roots": {"name": "text" | "array" | "map" | "xml"}}]}
// stdout: {"read": [{root: toJSON}, ...] (one per input doc),
//          "built": [{"name", "update": hex, "roots", "json"}, ...] (rich documents written
//          here with the Yjs API, as editors such as y-prosemirror write them)}
import * as Y from 'yjs'

const hex = (bytes) => Buffer.from(bytes).toString('hex')

const readStdin = async () => {
  const chunks = []
  for await (const chunk of process.stdin) chunks.push(chunk)
  return JSON.parse(Buffer.concat(chunks).toString('utf8').trim() || '{"docs": []}')
}

const getRoot = (doc, name, kind) => {
  if (kind === 'text') return doc.getText(name)
  if (kind === 'array') return doc.getArray(name)
  if (kind === 'map') return doc.getMap(name)
  if (kind === 'xml') return doc.getXmlFragment(name)
  throw new Error(`unknown kind ${kind}`)
}

const view = (doc, roots) => {
  const out = {}
  for (const [name, kind] of Object.entries(roots)) out[name] = getRoot(doc, name, kind).toJSON()
  return out
}

const read = ({ update, roots }) => {
  const doc = new Y.Doc()
  Y.applyUpdate(doc, new Uint8Array(Buffer.from(update, 'hex')))
  return view(doc, roots)
}

const formattedText = (doc) => {
  const text = doc.getText('body')
  text.insert(0, 'Hello world, again 😀 ok')
  text.format(0, 5, { bold: true })
  text.format(3, 6, { italic: true, color: '#f00' })
  text.insertEmbed(6, { image: 'cat.png' }, { width: 3 })
  text.delete(14, 3)
  text.format(0, 2, { bold: null })
  text.insert(2, 'XY', { underline: true })
  return { body: 'text' }
}

const nested = (doc) => {
  const map = doc.getMap('settings')
  map.set('int', 42)
  map.set('float', 1.5)
  map.set('neg', -7)
  map.set('big', 2 ** 40)
  map.set('flags', [true, false, null])
  map.set('obj', { a: { b: [1, 'two', { c: 3 }] } })
  const inner = new Y.Map()
  map.set('inner', inner)
  inner.set('title', 'x')
  const list = new Y.Array()
  inner.set('list', list)
  list.push([1, 'a', { k: 'v' }])
  const note = new Y.Text('note')
  list.push([note])
  note.insert(4, '!', { bold: true })
  map.set('gone', 1)
  map.delete('gone')
  map.set('int', 43)
  const items = doc.getArray('items')
  items.push(['a', 'b', 'c'])
  items.insert(1, [new Y.Map([['id', 1]])])
  items.delete(0, 1)
  const deep = new Y.Array()
  items.push([deep])
  deep.push([new Y.Array(), 'z'])
  deep.get(0).push([[1, 2]])
  return { settings: 'map', items: 'array' }
}

const paragraph = (content, marks) => {
  const p = new Y.XmlElement('paragraph')
  const text = new Y.XmlText()
  p.insert(0, [text])
  text.insert(0, content)
  for (const [start, length, attrs] of marks) text.format(start, length, attrs)
  return p
}

const prosemirror = (doc) => {
  const frag = doc.getXmlFragment('prosemirror')
  const heading = new Y.XmlElement('heading')
  frag.insert(0, [heading])
  heading.setAttribute('level', 2)
  heading.setAttribute('id', 'intro')
  heading.insert(0, [new Y.XmlText('Title')])
  frag.insert(1, [paragraph('Some bold and linked text', [[5, 4, { strong: true }], [14, 6, { link: { href: 'https://x.org', target: null } }]])])
  const list = new Y.XmlElement('bullet_list')
  const item = new Y.XmlElement('list_item')
  frag.insert(2, [list])
  list.insert(0, [item])
  item.insert(0, [paragraph('first', [[0, 5, { em: true, code: 'yes' }]])])
  frag.insert(3, [paragraph('to be deleted', [])])
  frag.delete(3, 1)
  heading.removeAttribute('id')
  heading.setAttribute('Data-X', 'A')
  const img = new Y.XmlElement('IMG')
  img.setAttribute('src', 'a.png')
  img.setAttribute('alt', '')
  frag.insert(3, [img])
  const numbers = new Y.XmlElement('numbers')
  const values = [0.1 + 0.2, 1e21, 1e-7, 0.00001, 2 ** 60, 123456789012345680000, -0, 1.5e300]
  values.forEach((value, i) => numbers.setAttribute(`n${i}`, value))
  numbers.setAttribute('list', [1, null, 'a'])
  frag.insert(4, [numbers])
  return { prosemirror: 'xml' }
}

const concurrent = (doc) => {
  // Two clients typing at once, so items name origins from another client.
  const other = new Y.Doc()
  doc.getText('shared').insert(0, 'abc')
  Y.applyUpdate(other, Y.encodeStateAsUpdate(doc))
  doc.getText('shared').insert(1, 'XX')
  other.getText('shared').insert(2, 'YY')
  other.getText('shared').delete(0, 1)
  doc.getMap('kv').set('k', 1)
  other.getMap('kv').set('k', 2)
  other.getMap('kv').set('j', 3)
  Y.applyUpdate(doc, Y.encodeStateAsUpdate(other))
  const emptied = doc.getText('emptied')
  emptied.insert(0, 'gone soon')
  emptied.delete(0, emptied.length)
  return { shared: 'text', kv: 'map', emptied: 'text' }
}

const CASES = { formattedText, nested, prosemirror, concurrent }

const built = Object.entries(CASES).map(([name, build]) => {
  const doc = new Y.Doc()
  const roots = build(doc)
  return { name, update: hex(Y.encodeStateAsUpdate(doc)), roots, json: view(doc, roots) }
})

const input = await readStdin()
const out = { read: input.docs.map(read), built }
process.stdout.write(JSON.stringify(out), () => process.exit(0))
