/**
 * The message list: keyed updates (no full re-render, so hover and focus survive remote
 * changes), own messages marked, auto-scroll only when the reader is already at the bottom.
 * @module messages-view
 */

import { h } from './dom.js'
import { colorFor, formatTime } from './identity.js'

/** @typedef {import('./model.js').ChatMessage} ChatMessage */

/**
 * @typedef {object} MessagesViewOptions
 * @property {() => string} me current user name
 * @property {(id: string, emoji: string) => void} [onReact] absent = read-only (history)
 * @property {string} [testId] data-testid of each item
 */

/**
 * @param {HTMLElement} list the scrolling container (an <ol>)
 * @param {MessagesViewOptions} options
 * @returns {{ render: (messages: ChatMessage[]) => void, scrollToEnd: () => void }}
 */
export function createMessagesView (list, { me, onReact, testId = 'message' }) {
  /** @type {Map<string, { el: HTMLLIElement, key: string }>} */
  const items = new Map()
  let lastCount = 0

  /** @param {ChatMessage[]} messages */
  function render (messages) {
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 48
    const self = me()
    const seen = new Set()
    let previous = ''
    for (const message of messages) {
      seen.add(message.id)
      const continued = previous === message.user
      previous = message.user
      const key = JSON.stringify([message, self, continued])
      let item = items.get(message.id)
      if (!item || item.key !== key) {
        const el = renderMessage(message, self, continued, testId, onReact)
        if (item) item.el.replaceWith(el)
        item = { el, key }
        items.set(message.id, item)
      }
      list.append(item.el) // moves it into document order; a no-op when already in place
    }
    for (const [id, item] of items) {
      if (!seen.has(id)) {
        item.el.remove()
        items.delete(id)
      }
    }
    const grew = messages.length > lastCount
    const lastIsMine = messages.length > 0 && messages[messages.length - 1].user === self
    lastCount = messages.length
    if (list.childElementCount === 0) list.append(emptyState())
    else list.querySelector('.empty')?.remove()
    if (atBottom || (grew && lastIsMine)) scrollToEnd()
  }

  function scrollToEnd () {
    list.scrollTop = list.scrollHeight
  }

  return { render, scrollToEnd }
}

function emptyState () {
  return h('li', { class: 'empty' }, [
    h('p', { class: 'empty-title', text: 'No messages yet' }),
    h('p', { text: 'Say hello — it works offline too.' })
  ])
}

/**
 * @param {ChatMessage} message
 * @param {string} self
 * @param {boolean} continued same author as the message before (grouped, no avatar)
 * @param {string} testId
 * @param {MessagesViewOptions['onReact']} onReact
 * @returns {HTMLLIElement}
 */
function renderMessage (message, self, continued, testId, onReact) {
  const own = message.user === self
  const classes = ['message', own ? 'own' : '', continued ? 'continued' : ''].filter(Boolean).join(' ')
  const avatar = h('div', { class: 'avatar', 'aria-hidden': 'true', text: message.user.slice(0, 1).toUpperCase() })
  avatar.style.background = colorFor(message.user)
  const meta = h('div', { class: 'meta' }, [
    h('span', { class: 'author', text: own ? `${message.user} (you)` : message.user }),
    h('time', { text: formatTime(message.ts) })
  ])
  const anyReaction = message.reactions.some((reaction) => reaction.count > 0)
  const reactions = h('div', { class: 'reactions', 'data-any': String(anyReaction) }, message.reactions.map((reaction) => {
    const mine = reaction.users.includes(self)
    const button = h('button', {
      type: 'button',
      class: 'chip',
      'data-testid': 'reaction-button',
      'data-emoji': reaction.emoji,
      'data-count': String(reaction.count),
      'aria-pressed': mine ? 'true' : 'false',
      'aria-label': `${reaction.emoji} ${reaction.count}`,
      title: reaction.users.length > 0 ? reaction.users.join(', ') : 'React',
      disabled: onReact === undefined
    }, [
      h('span', { class: 'emoji', text: reaction.emoji }),
      h('span', { class: 'count', 'data-testid': 'reaction-count', text: String(reaction.count) })
    ])
    if (onReact) button.addEventListener('click', () => onReact(message.id, reaction.emoji))
    return button
  }))
  return h('li', { class: classes, 'data-testid': testId, 'data-id': message.id, 'data-user': message.user }, [
    avatar,
    h('div', { class: 'body' }, [meta, h('div', { class: 'bubble', text: message.text }), reactions])
  ])
}
