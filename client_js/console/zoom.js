/**
 * The timeline's zoom: which span of time (epoch seconds) the chart shows, and how a drag, the wheel, the buttons
 * or the keyboard change it. The span math is pure (and unit-tested); `ChartZoom` wires it to a chart element.
 * A span of `null` means everything loaded.
 * @module zoom
 */

/** @typedef {{ from: number, to: number }} Span */

/** The narrowest span the chart zooms to (seconds): below it, buckets hold single edits anyway. */
export const MIN_WIDTH = 0.05
const ZOOM_FACTOR = 2
const PAN_FRACTION = 0.5
const DRAG_PX = 4
/**
 * How close (seconds) a span's end must come to an end of everything to count as at it: epoch seconds carry ~0.2 µs
 * of rounding, so a span panned onto the end by halves can stop an ulp short and leave the newest edit out.
 */
const AT_END = 1e-3

/**
 * Everything loaded, as a span (at least MIN_WIDTH wide, so one edit still has room).
 * @param {{ ts: number }[]} entries oldest first
 * @returns {Span | null}
 */
export function fullSpan (entries) {
  if (entries.length === 0) return null
  const from = entries[0].ts
  return { from, to: Math.max(entries[entries.length - 1].ts, from + MIN_WIDTH) }
}

/**
 * `span` moved inside `full`; null when it covers all of `full` (nothing left to zoom out of).
 * @param {Span} span @param {Span} full @returns {Span | null}
 */
export function clampSpan (span, full) {
  const width = Math.max(MIN_WIDTH, span.to - span.from)
  if (width >= full.to - full.from) return null
  // at an end, that end exactly (the newest edit sits at full.to: rounding must not leave it out)
  if (span.from <= full.from + AT_END) return { from: full.from, to: full.from + width }
  if (span.from + width >= full.to - AT_END) return { from: full.to - width, to: full.to }
  return { from: span.from, to: span.from + width }
}

/**
 * Zoom by `factor` (< 1 in, > 1 out) keeping the point at `at` (0..1 across the span) where it is.
 * @param {Span} span @param {Span} full @param {number} factor @param {number} [at]
 * @returns {Span | null}
 */
export function zoomSpan (span, full, factor, at = 0.5) {
  const width = Math.max(MIN_WIDTH, (span.to - span.from) * factor)
  const point = span.from + (span.to - span.from) * at
  return clampSpan({ from: point - width * at, to: point - width * at + width }, full)
}

/**
 * Move by `fraction` of the span's width (negative: earlier).
 * @param {Span} span @param {Span} full @param {number} fraction @returns {Span | null}
 */
export function panSpan (span, full, fraction) {
  const shift = (span.to - span.from) * fraction
  return clampSpan({ from: span.from + shift, to: span.to + shift }, full)
}

/**
 * The part of `span` between two fractions of it (a drag's start and end, in either order).
 * @param {Span} span @param {Span} full @param {number} a @param {number} b @returns {Span | null}
 */
export function selectSpan (span, full, a, b) {
  const width = span.to - span.from
  const [lo, hi] = [Math.max(0, Math.min(a, b)), Math.min(1, Math.max(a, b))]
  return clampSpan({ from: span.from + width * lo, to: span.from + width * hi }, full)
}

/**
 * Drag, wheel and keys on a chart element. The owner says what is shown (`span()`, `full()`) and gets the new span
 * (`onZoom`); a click without a drag goes to `onClick` with its position (0..1 across the chart).
 */
export class ChartZoom {
  /**
   * @param {HTMLElement} chart the plotting area (focusable)
   * @param {HTMLElement} selection an overlay drawn while dragging
   * @param {{ span: () => Span | null, full: () => Span | null, onZoom: (span: Span | null) => void, onClick: (at: number) => void }} owner
   */
  constructor (chart, selection, owner) {
    this.chart = chart
    this.selection = selection
    this.owner = owner
    /** @type {number | null} */
    this.dragStart = null
    chart.addEventListener('pointerdown', (event) => this.down(event))
    chart.addEventListener('pointermove', (event) => this.move(event))
    chart.addEventListener('pointerup', (event) => this.up(event))
    chart.addEventListener('pointercancel', () => this.endDrag())
    chart.addEventListener('wheel', (event) => this.wheel(event), { passive: false })
    chart.addEventListener('keydown', (event) => this.key(event))
  }

  /** @param {number} clientX @returns {number} 0..1 across the chart (a few pixels from an edge count as the edge) */
  at (clientX) {
    const box = this.chart.getBoundingClientRect()
    if (box.width <= 0) return 0.5
    const x = clientX - box.left
    if (x <= DRAG_PX) return 0
    if (x >= box.width - DRAG_PX) return 1
    return x / box.width
  }

  /** @param {(span: Span, full: Span) => Span | null} change */
  apply (change) {
    const full = this.owner.full()
    if (full === null) return
    this.owner.onZoom(change(this.owner.span() ?? full, full))
  }

  zoomIn () { this.apply((span, full) => zoomSpan(span, full, 1 / ZOOM_FACTOR)) }
  zoomOut () { this.apply((span, full) => zoomSpan(span, full, ZOOM_FACTOR)) }
  earlier () { this.apply((span, full) => panSpan(span, full, -PAN_FRACTION)) }
  later () { this.apply((span, full) => panSpan(span, full, PAN_FRACTION)) }
  reset () { this.owner.onZoom(null) }

  /** @param {PointerEvent} event */
  down (event) {
    if (event.button !== 0) return
    this.dragStart = event.clientX
    this.chart.setPointerCapture?.(event.pointerId)
  }

  /** @param {PointerEvent} event */
  move (event) {
    if (this.dragStart === null) return
    const box = this.chart.getBoundingClientRect()
    const left = Math.min(this.dragStart, event.clientX) - box.left
    const width = Math.abs(event.clientX - this.dragStart)
    this.selection.hidden = width < DRAG_PX
    this.selection.style.left = `${Math.max(0, left)}px`
    this.selection.style.width = `${width}px`
  }

  /** @param {PointerEvent} event */
  up (event) {
    const start = this.dragStart
    this.endDrag()
    if (start === null) return
    if (Math.abs(event.clientX - start) < DRAG_PX) {
      this.owner.onClick(this.at(event.clientX))
      return
    }
    const [a, b] = [this.at(start), this.at(event.clientX)]
    this.apply((span, full) => selectSpan(span, full, a, b))
  }

  endDrag () {
    this.dragStart = null
    this.selection.hidden = true
  }

  /** @param {WheelEvent} event */
  wheel (event) {
    if (event.deltaY === 0) return
    event.preventDefault()
    const at = this.at(event.clientX)
    const factor = event.deltaY < 0 ? 1 / ZOOM_FACTOR : ZOOM_FACTOR
    this.apply((span, full) => zoomSpan(span, full, factor, at))
  }

  /** @param {KeyboardEvent} event */
  key (event) {
    /** @type {Record<string, () => void>} */
    const actions = {
      '+': () => this.zoomIn(),
      '=': () => this.zoomIn(),
      '-': () => this.zoomOut(),
      ArrowLeft: () => this.earlier(),
      ArrowRight: () => this.later(),
      0: () => this.reset(),
      Home: () => this.reset()
    }
    const action = actions[event.key]
    if (!action || event.ctrlKey || event.metaKey || event.altKey) return
    event.preventDefault()
    action()
  }
}
