// Helper: renders Markdown to HTML and reports a table of contents and word statistics.
// Pure computation on its params: it needs no files, no network, no child processes,
// so its manifest can give it the `pure-compute` sandbox profile.
import { serve } from 'bulkhead/service';
import { renderMarkdown } from './markdown-render.js';

serve('com.bulkhead.demo.markdown', {
  render: ({ markdown, topWords }) => renderMarkdown(markdown, { topWords }),
});
