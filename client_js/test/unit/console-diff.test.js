/**
 * The console's diff between two JSON views: path by path, added / removed / changed.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { diffJson } from '../../console/diff.js'

test('equal views have no differences', () => {
  assert.deepEqual(diffJson({ a: [1, { b: 'x' }] }, { a: [1, { b: 'x' }] }), [])
})

test('map keys added, removed and changed, nested, by path', () => {
  const before = { meta: { title: 'Draft', tags: ['a'] }, gone: true }
  const after = { meta: { title: 'Final', tags: ['a', 'b'], owner: 'ann' } }
  assert.deepEqual(diffJson(before, after), [
    { kind: 'removed', path: '/gone', before: true },
    { kind: 'added', path: '/meta/owner', after: 'ann' },
    { kind: 'added', path: '/meta/tags/1', after: 'b' },
    { kind: 'changed', path: '/meta/title', before: 'Draft', after: 'Final' }
  ])
})

test('arrays compare by index; a type change is one change', () => {
  assert.deepEqual(diffJson({ items: ['a', 'b', 'c'] }, { items: ['a', 'c'] }), [
    { kind: 'changed', path: '/items/1', before: 'b', after: 'c' },
    { kind: 'removed', path: '/items/2', before: 'c' }
  ])
  assert.deepEqual(diffJson({ x: [1] }, { x: { 0: 1 } }), [{ kind: 'changed', path: '/x', before: [1], after: { 0: 1 } }])
})

test('keys with / and ~ are escaped as in a JSON Pointer', () => {
  assert.deepEqual(diffJson({}, { 'a/b~c': 1 }), [{ kind: 'added', path: '/a~1b~0c', after: 1 }])
})
