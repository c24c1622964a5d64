// Live views: the layer's server-sent events (GET /events) ask for a refresh as things happen, and
// a poll every 2 s covers what sends no event (an agent's health) and a layer without the stream
// (API Gateway answers 501). Both stop while the tab is hidden.
import { authHeaders } from './api.ts';

export const POLL_MS = 2000;

export function startLive(refresh: () => void): () => void {
  let stopped = false;
  let soon: ReturnType<typeof setTimeout> | undefined;
  const refreshSoon = () => {
    soon ??= setTimeout(() => {
      soon = undefined;
      if (!stopped && !document.hidden) refresh();
    }, 150);
  };
  const timer = setInterval(() => {
    if (!document.hidden) refresh();
  }, POLL_MS);
  const onVisible = () => {
    if (!document.hidden) refresh();
  };
  document.addEventListener('visibilitychange', onVisible);

  // EventSource cannot send the bearer token: the stream is read through fetch instead.
  const abort = new AbortController();
  let lastEventId: string | undefined;
  const stream = async (): Promise<void> => {
    while (!stopped) {
      if (document.hidden) {
        await new Promise<void>((ok) => document.addEventListener('visibilitychange', () => ok(), { once: true }));
        continue;
      }
      try {
        const res = await fetch('/events', {
          headers: { accept: 'text/event-stream', ...(lastEventId ? { 'last-event-id': lastEventId } : {}), ...authHeaders() },
          signal: abort.signal,
        });
        if (!res.ok || !res.body) return; // no stream here (or no token yet): the poll carries on alone
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done || stopped) break;
          buffer += value;
          let end: number;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const frame = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const id = /^id: (.*)$/m.exec(frame)?.[1];
            if (id) lastEventId = id;
            if (/^data: /m.test(frame)) refreshSoon();
          }
          // The stream hid a change while the tab was hidden: catch up on return, not now.
          if (document.hidden) break;
        }
      } catch {
        if (stopped) return;
      }
      await new Promise((ok) => setTimeout(ok, POLL_MS));
    }
  };
  void stream();

  return () => {
    stopped = true;
    clearInterval(timer);
    if (soon) clearTimeout(soon);
    document.removeEventListener('visibilitychange', onVisible);
    abort.abort();
  };
}
