/**
 * The operator console: `#/` the rooms table, `#/room/NAME` one room. Each view polls or subscribes only while it
 * is shown, so a console left on another view (or closed) costs the server nothing.
 * @module main
 */
import { RoomsView } from './rooms-view.js'
import { RoomView } from './room-view.js'
import { ServerView } from './server-view.js'

const main = /** @type {HTMLElement} */ (document.getElementById('main'))
/** @type {{ stop: () => void } | null} */
let current = null
const server = new ServerView()
document.getElementById('server')?.replaceWith(server.element)
server.start()

function route () {
  current?.stop()
  const match = /^#\/room\/(.+)$/.exec(location.hash)
  if (match) {
    const view = new RoomView(decodeURIComponent(match[1]))
    main.replaceChildren(view.element)
    view.start()
    current = view
    document.title = `${view.room} · Performer console`
  } else {
    const view = new RoomsView()
    main.replaceChildren(view.element)
    view.start()
    current = view
    document.title = 'Performer console'
  }
  main.focus()
}

window.addEventListener('hashchange', route)
route()
