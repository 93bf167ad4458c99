// A small, safe Markdown renderer: no dependencies, no raw HTML passthrough.
// Supports ATX headings, paragraphs, **strong**, *em*, `code`, fenced code
// blocks, [links](url), lists (nested by indentation), blockquotes, pipe
// tables and horizontal rules. Every piece of text is HTML-escaped; links
// with a scheme other than http, https or mailto are rendered as plain text.
// It is a module of the markdown helper (it lives next to it so a sandbox
// that only exposes the helper's own directory can still load it).

const STOP_WORDS = new Set(('a an and are as at be but by can for from has have if in into is it its '
  + 'not of on one or so than that the their them then there these they this to was were what when which '
  + 'who will with without you your does do no only own any each every other our may must more most '
  + 'same one two also just about after before over under out up down how why all both '
  + 'itself whole gets get give gives let').split(/\s+/));

/** @param {string} s */
function escapeHtml(s) {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

/** A link target we are willing to emit: http(s), mailto, or relative. */
function safeHref(url) {
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(url);
  if (scheme === null) return url; // relative: "../x.md", "#id", "/path"
  return ['http', 'https', 'mailto'].includes(scheme[1].toLowerCase()) ? url : undefined;
}

/** Lowercase, ASCII letters/digits/hyphens: "What crosses the boundary" → "what-crosses-the-boundary". */
function slugify(text) {
  const slug = text.toLowerCase().normalize('NFKD').replace(/[^a-z0-9\s-]/g, '').trim().replace(/[\s-]+/g, '-');
  return slug === '' ? 'section' : slug;
}

const RE = {
  fence: /^ {0,3}(`{3,}|~{3,})\s*([\w+#.-]*)\s*$/,
  heading: /^ {0,3}(#{1,6})(?:\s+(.*?))?\s*#*\s*$/,
  rule: /^ {0,3}(?:(?:\*\s*){3,}|(?:-\s*){3,}|(?:_\s*){3,})$/,
  quote: /^ {0,3}> ?(.*)$/,
  item: /^( {0,3})([-*+]|\d{1,9}[.)])\s+(.*)$/,
  tableDivider: /^\s*\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$/,
  blank: /^\s*$/,
};

/** Splits "| a | b |" into cells, honouring "\|" escapes. */
function tableCells(line) {
  let s = line.trim();
  if (s.startsWith('|')) s = s.slice(1);
  if (s.endsWith('|') && !s.endsWith('\\|')) s = s.slice(0, -1);
  return s.split(/(?<!\\)\|/).map((cell) => cell.trim().replace(/\\\|/g, '|'));
}

class Renderer {
  constructor() {
    this.toc = [];
    this.ids = new Map();
    this.prose = [];
    this.counts = { headings: 0, paragraphs: 0, listItems: 0, codeBlocks: 0, tables: 0, links: 0, unsafeLinks: 0 };
  }

  /** Renders a sequence of lines as blocks. */
  blocks(lines) {
    const out = [];
    let i = 0;
    while (i < lines.length) {
      const line = lines[i];
      if (RE.blank.test(line)) { i++; continue; }

      const fence = RE.fence.exec(line);
      if (fence !== null) {
        const body = [];
        i++;
        while (i < lines.length && !(lines[i].trim().startsWith(fence[1][0].repeat(fence[1].length)) && lines[i].trim().replace(/[`~]/g, '') === '')) body.push(lines[i++]);
        i++; // closing fence (or end of input)
        this.counts.codeBlocks++;
        const lang = fence[2] === '' ? '' : ` class="language-${escapeHtml(fence[2])}"`;
        out.push(`<pre><code${lang}>${escapeHtml(body.join('\n'))}</code></pre>`);
        continue;
      }

      const heading = RE.heading.exec(line);
      if (heading !== null) {
        const level = heading[1].length;
        const text = heading[2] ?? '';
        const plain = this.plain(text);
        let id = slugify(plain);
        const seen = this.ids.get(id) ?? 0;
        this.ids.set(id, seen + 1);
        if (seen > 0) id = `${id}-${seen}`;
        this.toc.push({ level, text: plain, id });
        this.counts.headings++;
        out.push(`<h${level} id="${id}">${this.inline(text)}</h${level}>`);
        i++;
        continue;
      }

      if (RE.rule.test(line)) { out.push('<hr>'); i++; continue; }

      if (RE.quote.test(line)) {
        const inner = [];
        while (i < lines.length && RE.quote.test(lines[i])) inner.push(RE.quote.exec(lines[i++])[1]);
        out.push(`<blockquote>\n${this.blocks(inner)}\n</blockquote>`);
        continue;
      }

      if (line.includes('|') && i + 1 < lines.length && RE.tableDivider.test(lines[i + 1])) {
        const header = tableCells(line);
        const align = tableCells(lines[i + 1]).map((c) => (c.startsWith(':') && c.endsWith(':') ? 'center' : c.endsWith(':') ? 'right' : c.startsWith(':') ? 'left' : ''));
        i += 2;
        const rows = [];
        while (i < lines.length && !RE.blank.test(lines[i]) && lines[i].includes('|')) rows.push(tableCells(lines[i++]));
        const cell = (tag, text, col) => `<${tag}${align[col] ? ` style="text-align:${align[col]}"` : ''}>${this.inline(text)}</${tag}>`;
        this.counts.tables++;
        out.push([
          '<table>',
          `<thead><tr>${header.map((h, c) => cell('th', h, c)).join('')}</tr></thead>`,
          `<tbody>${rows.map((r) => `<tr>${header.map((_, c) => cell('td', r[c] ?? '', c)).join('')}</tr>`).join('')}</tbody>`,
          '</table>',
        ].join('\n'));
        continue;
      }

      const item = RE.item.exec(line);
      if (item !== null) {
        const ordered = /\d/.test(item[2]);
        const items = [];
        while (i < lines.length) {
          const m = RE.item.exec(lines[i]);
          if (m === null || /\d/.test(m[2]) !== ordered) break;
          const indent = m[1].length + m[2].length + 1;
          const body = [m[3]];
          i++;
          // Continuation: indented lines (and blank lines followed by indented ones) belong to the item.
          while (i < lines.length) {
            if (RE.blank.test(lines[i])) {
              if (i + 1 < lines.length && /^\s{2,}\S/.test(lines[i + 1])) { body.push(''); i++; continue; }
              break;
            }
            if (/^\s{2,}\S/.test(lines[i])) { body.push(lines[i].replace(new RegExp(`^\\s{0,${indent}}`), '')); i++; continue; }
            if (RE.item.test(lines[i]) || this.startsBlock(lines[i])) break;
            body.push(lines[i++]); // lazy continuation of the item's paragraph
          }
          items.push(body);
        }
        this.counts.listItems += items.length;
        const start = ordered && Number.parseInt(item[2], 10) !== 1 ? ` start="${Number.parseInt(item[2], 10)}"` : '';
        const tag = ordered ? 'ol' : 'ul';
        out.push(`<${tag}${start}>\n${items.map((body) => `<li>${this.itemBody(body)}</li>`).join('\n')}\n</${tag}>`);
        continue;
      }

      // Paragraph: up to a blank line or the start of another block.
      const para = [line.trim()];
      i++;
      while (i < lines.length && !RE.blank.test(lines[i]) && !this.startsBlock(lines[i])) para.push(lines[i++].trim());
      this.counts.paragraphs++;
      out.push(`<p>${this.inline(para.join('\n'))}</p>`);
    }
    return out.join('\n');
  }

  /** True when the line opens a block that interrupts a paragraph. */
  startsBlock(line) {
    return RE.fence.test(line) || RE.heading.test(line) || RE.rule.test(line) || RE.quote.test(line) || RE.item.test(line);
  }

  /** A list item's content: inline when it is one paragraph (a tight list), blocks otherwise. */
  itemBody(body) {
    const [first, ...rest] = body;
    const restIsBlocks = rest.some((l) => RE.blank.test(l) || this.startsBlock(l));
    if (!restIsBlocks) return this.inline([first, ...rest].map((l) => l.trim()).join('\n'));
    const firstPara = [first];
    let k = 0;
    while (k < rest.length && !RE.blank.test(rest[k]) && !this.startsBlock(rest[k])) firstPara.push(rest[k++].trim());
    return this.inline(firstPara.join('\n')) + '\n' + this.blocks(rest.slice(k));
  }

  /** Inline markup to HTML. Records the text as prose for the word count. */
  inline(text) {
    this.prose.push(this.plain(text));
    return this.spans(text);
  }

  spans(text) {
    let out = '';
    let i = 0;
    const link = /\[([^\]]*)\]\(\s*([^()\s]*)(?:\s+"([^"]*)")?\s*\)/y;
    const strong = /(\*\*|__)(?=\S)([\s\S]*?\S)\1/y;
    const em = /(\*|_)(?=\S)([\s\S]*?\S)\1/y;
    while (i < text.length) {
      const c = text[i];
      if (c === '\\' && i + 1 < text.length && /[\\`*_[\]()#+\-.!|>{}]/.test(text[i + 1])) {
        out += escapeHtml(text[i + 1]);
        i += 2;
        continue;
      }
      if (c === '`') {
        let ticks = 1;
        while (text[i + ticks] === '`') ticks++;
        const fence = '`'.repeat(ticks);
        const end = text.indexOf(fence, i + ticks);
        if (end !== -1) {
          out += `<code>${escapeHtml(text.slice(i + ticks, end).replace(/\n/g, ' ').trim())}</code>`;
          i = end + ticks;
          continue;
        }
        out += fence;
        i += ticks;
        continue;
      }
      if (c === '[') {
        link.lastIndex = i;
        const m = link.exec(text);
        if (m !== null) {
          const href = safeHref(m[2]);
          if (href === undefined) {
            this.counts.unsafeLinks++;
            out += this.spans(m[1]);
          } else {
            this.counts.links++;
            const title = m[3] === undefined ? '' : ` title="${escapeHtml(m[3])}"`;
            out += `<a href="${escapeHtml(href)}"${title}>${this.spans(m[1])}</a>`;
          }
          i = link.lastIndex;
          continue;
        }
      }
      if (c === '*' || c === '_') {
        // "_" only opens emphasis at a word boundary, so snake_case stays as it is.
        const opens = c === '*' || i === 0 || !/[\p{L}\p{N}]/u.test(text[i - 1]);
        const span = opens ? this.emphasis(text, i, [[strong, 'strong'], [em, 'em']]) : undefined;
        if (span !== undefined) {
          out += span.html;
          i = span.end;
          continue;
        }
      }
      out += escapeHtml(text[i]);
      i++;
    }
    return out;
  }

  /** Tries **strong** then *em* at position i; "_" must also close at a word boundary. */
  emphasis(text, i, candidates) {
    for (const [re, tag] of candidates) {
      re.lastIndex = i;
      const m = re.exec(text);
      if (m === null) continue;
      if (m[1][0] === '_' && /[\p{L}\p{N}]/u.test(text[re.lastIndex] ?? '')) continue;
      return { html: `<${tag}>${this.spans(m[2])}</${tag}>`, end: re.lastIndex };
    }
    return undefined;
  }

  /** Text without markup, for the TOC and the word count. */
  plain(text) {
    return text
      .replace(/`+([^`]*)`+/g, '$1')
      .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
      .replace(/(\*\*|__|\*|(?<![\p{L}\p{N}])_|_(?![\p{L}\p{N}]))/gu, '')
      .replace(/\\(.)/g, '$1')
      .replace(/\s+/g, ' ')
      .trim();
  }
}

/**
 * Renders Markdown to HTML and collects a table of contents and statistics.
 * @param {string} markdown
 * @param {{ topWords?: number }} [options]
 */
export function renderMarkdown(markdown, options = {}) {
  const renderer = new Renderer();
  const lines = markdown.replace(/\r\n?/g, '\n').replace(/\t/g, '    ').split('\n');
  const html = renderer.blocks(lines);
  const words = renderer.prose.join(' ').match(/[\p{L}\p{N}][\p{L}\p{N}'’-]*/gu) ?? [];
  const freq = new Map();
  for (const w of words) {
    const word = w.toLowerCase().replace(/['’]s$/, '');
    if (word.length < 3 || STOP_WORDS.has(word) || /^\d+$/.test(word)) continue;
    freq.set(word, (freq.get(word) ?? 0) + 1);
  }
  const topWords = [...freq].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])).slice(0, options.topWords ?? 5).map(([word, count]) => ({ word, count }));
  const title = renderer.toc.find((h) => h.level === 1)?.text ?? null;
  return {
    title,
    html,
    toc: renderer.toc,
    stats: { words: words.length, ...renderer.counts, readingMinutes: Math.max(words.length > 0 ? 1 : 0, Math.round(words.length / 200)), topWords },
  };
}
