// Reel Answers: the chat in the browser. Vanilla ES module, no dependencies.
// Without this script the form posts to the server, which renders the same conversation.
// Every string from a review or a user goes into the page through textContent, never as HTML.

const MAX_HISTORY = 20; // earlier turns sent with each question (the API accepts up to 50)

const $ = (id) => document.getElementById(id);
const form = $("ask-form");
const input = $("question");
const conversation = $("conversation");
const welcome = $("welcome");
const notice = $("form-notice");
const filmInput = $("film");
const chip = $("film-chip");
const chipText = $("film-chip-text");
const chosen = $("film-chosen");
const removeFilm = $("film-remove");
const sendButton = $("send");
const datalist = $("film-list");

// Confidence thresholds come from the server ([[0.7, "confident"], ...]), so they live in one place.
const CONFIDENCE = JSON.parse(document.body.dataset.confidence || "[[0, \"unsure\"]]");

const history = []; // {question, answer, film} of each answered turn, oldest first
let titles = Array.from(datalist.options, (o) => o.value);
let film = chosen.disabled ? null : chosen.value || null;
let pending = false;
const motion = () => (matchMedia("(prefers-reduced-motion: reduce)").matches ? "auto" : "smooth");

// ----- small DOM helpers ------------------------------------------------------------------------

function el(tag, className, ...children) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child); // strings become text nodes
  }
  return node;
}

const srOnly = (text) => el("span", "visually-hidden", text);

export function confidenceWord(score) {
  for (const [threshold, word] of CONFIDENCE) if (score >= threshold) return word;
  return CONFIDENCE[CONFIDENCE.length - 1][1];
}

function confidenceBadge(score) {
  const word = confidenceWord(score);
  const badge = el("span", `confidence confidence-${word}`, word, srOnly(` (score ${score.toFixed(2)})`));
  badge.title = `Score ${score.toFixed(2)} out of 1`;
  return badge;
}

function filmName(title) {
  return title ? el("span", "film-name", title) : null;
}

// The passage with text[start:end] marked; offsets come from the response, never from a text search.
function markedText(text, start, end) {
  const p = el("p", "passage-text");
  if (start === null || end === null || start < 0 || end > text.length || start > end) {
    p.append(text);
  } else {
    p.append(text.slice(0, start), el("mark", null, text.slice(start, end)), text.slice(end));
  }
  return p;
}

function passageBlock(passage, answer) {
  const block = el("blockquote", "passage");
  block.dataset.documentId = passage.document_id;
  block.dataset.markStart = answer ? String(answer.document_start) : "";
  block.dataset.markEnd = answer ? String(answer.document_end) : "";
  block.append(
    markedText(passage.text, answer ? answer.start : null, answer ? answer.end : null),
    el("footer", "passage-source",
      el("span", null, "From the review of ", el("cite", null, passage.film || passage.document_id))),
  );
  addExpander(block);
  return block;
}

function fold(summary, className, list) {
  return el("details", `fold ${className}`, el("summary", null, summary), list);
}

// ----- replies ----------------------------------------------------------------------------------

function userBubble(question) {
  return el("div", "bubble bubble-user", srOnly("You asked:"), el("p", "question-text", question));
}

function pendingBubble() {
  const dots = el("span", "dots", el("span"), el("span"), el("span"));
  dots.setAttribute("aria-hidden", "true");
  return el("div", "bubble bubble-bot bubble-pending", dots, "Reading the reviews…");
}

function errorBubble(message) {
  return el("div", "bubble bubble-bot bubble-error", srOnly("Reply:"), el("p", "error-text", message));
}

function replyBubble(data) {
  const bot = el("div", "bubble bubble-bot", srOnly("Reply:"));
  if (data.resolved_question && data.resolved_question !== data.question) {
    bot.append(el("p", "understood", "Understood as: ", el("q", null, data.resolved_question)));
  }
  const passages = new Map(data.passages.map((p) => [p.id, p]));
  const answers = data.no_answer ? [] : data.answers;
  if (answers.length) {
    const best = answers[0];
    bot.append(el("p", "answer", el("strong", null, best.text)),
      el("p", "meta", filmName(best.film), confidenceBadge(best.score)));
    const passage = passages.get(best.passage_id);
    if (passage) bot.append(passageBlock(passage, best));
    if (answers.length > 1) {
      const more = el("ol", "more-answers");
      for (const answer of answers.slice(1)) {
        const p = passages.get(answer.passage_id);
        more.append(el("li", null,
          el("p", "meta", el("strong", "answer-alt", answer.text), filmName(answer.film), confidenceBadge(answer.score)),
          p ? passageBlock(p, answer) : null));
      }
      const n = answers.length - 1;
      bot.append(fold(`${n} more answer${n === 1 ? "" : "s"}`, "fold-answers", more));
    }
  } else {
    bot.append(el("p", "answer answer-none", "The reviews don’t say."));
  }
  if (data.passages.length) {
    const read = el("ol", "passages-read");
    for (const p of data.passages) read.append(el("li", null, passageBlock(p, null)));
    const label = answers.length ? "Show the passages read" : "Show the closest passages";
    bot.append(fold(`${label} (${data.passages.length})`, "fold-passages", read));
  }
  return bot;
}

// ----- the whole review -------------------------------------------------------------------------

function addExpander(block) {
  const source = block.querySelector(".passage-source");
  if (!source || !block.dataset.documentId || source.querySelector(".link-button")) return;
  const button = el("button", "link-button", "Read the whole review");
  button.type = "button";
  button.setAttribute("aria-expanded", "false");
  let passageText = null;
  let wholeText = null;
  button.addEventListener("click", async () => {
    const current = block.querySelector(".passage-text");
    if (button.getAttribute("aria-expanded") === "true") {
      current.replaceWith(passageText);
      block.classList.remove("whole-review");
      button.textContent = "Read the whole review";
      button.setAttribute("aria-expanded", "false");
      return;
    }
    if (!wholeText) {
      button.textContent = "Loading the review…";
      try {
        const res = await fetch(`/documents/${encodeURIComponent(block.dataset.documentId)}`,
          { headers: { Accept: "application/json" } });
        if (!res.ok) throw new Error(String(res.status));
        const doc = await res.json();
        const start = block.dataset.markStart === "" ? null : Number(block.dataset.markStart);
        const end = block.dataset.markEnd === "" ? null : Number(block.dataset.markEnd);
        wholeText = markedText(doc.text, start, end);
      } catch {
        button.textContent = "Could not load the review; try again";
        return;
      }
    }
    passageText = current;
    current.replaceWith(wholeText);
    block.classList.add("whole-review");
    button.textContent = "Show only the passage";
    button.setAttribute("aria-expanded", "true");
    const mark = wholeText.querySelector("mark");
    if (mark) wholeText.scrollTop = Math.max(0, mark.offsetTop - wholeText.offsetTop - 48);
  });
  source.append(button);
}

// ----- asking -----------------------------------------------------------------------------------

function describeFailure(status, body) {
  const detail = body && typeof body.detail === "string" ? body.detail : "";
  if (status === 401) return "Your sign-in has ended or the API token changed: reload the page to sign in again.";
  if (status === 422) return `That question cannot be asked: ${detail || "the server could not use it"}.`;
  if (status === 503 || status === 413) return detail || "The server cannot answer right now. Try again shortly.";
  if (status >= 500) return "Something went wrong on the server. Try again in a moment.";
  return `The server answered with an error (${status})${detail ? `: ${detail}` : ""}.`;
}

function setBusy(busy) {
  pending = busy;
  form.setAttribute("aria-busy", String(busy));
  sendButton.setAttribute("aria-disabled", String(busy));
}

function showNotice(message) {
  notice.textContent = message || "";
  notice.hidden = !message;
}

async function ask(question) {
  const text = question.trim();
  if (pending) return;
  if (!text) {
    input.focus();
    return;
  }
  if (!resolveTypedFilm()) return;
  showNotice(null);
  setBusy(true);
  welcome.hidden = true;
  conversation.querySelector("#latest")?.removeAttribute("id");
  const waiting = pendingBubble();
  const turn = el("li", "turn", userBubble(text), waiting);
  conversation.append(turn);
  turn.scrollIntoView({ block: "nearest", behavior: motion() });
  try {
    let res;
    try {
      res = await fetch("/ask", {
        method: "POST",
        headers: { "Content-Type": "application/json", Accept: "application/json" },
        body: JSON.stringify({
          question: text,
          filters: film ? { film } : null,
          history: history.slice(-MAX_HISTORY),
        }),
      });
    } catch {
      throw new Error("Could not reach the server. Check your connection, then try again.");
    }
    let data = null;
    try { data = await res.json(); } catch { /* not JSON: described by the status */ }
    if (!res.ok || !data) throw new Error(describeFailure(res.status, data));
    waiting.replaceWith(replyBubble(data));
    const best = data.no_answer ? null : data.answers[0];
    history.push({ question: text, answer: best ? best.text.slice(0, 1000) : null, film: (best && best.film) || data.film || null });
    if (input.value.trim() === text) input.value = "";
  } catch (error) {
    waiting.replaceWith(errorBubble(error.message));
    if (!input.value.trim()) input.value = text; // kept (or put back) in the input to retry
  } finally {
    setBusy(false);
    autoresize();
    input.focus();
    turn.scrollIntoView({ block: "start", behavior: motion() });
  }
}

// ----- the film filter --------------------------------------------------------------------------

function normalizeTitle(text) {
  const plain = text.normalize("NFKD").replace(/[\u0300-\u036f]/g, "").toLowerCase().replace(/&/g, " and ");
  const words = plain.replace(/[^\p{L}\p{N}\s]/gu, " ").split(/\s+/).filter(Boolean).join(" ");
  return words.startsWith("the ") ? words.slice(4) : words;
}

function matchTitle(value) {
  const wanted = normalizeTitle(value);
  return wanted ? titles.find((t) => normalizeTitle(t) === wanted) || null : null;
}

function setFilm(title) {
  film = title;
  chipText.textContent = title;
  chosen.value = title;
  chosen.disabled = false;
  removeFilm.setAttribute("aria-label", `Remove the film filter: ${title}`);
  chip.hidden = false;
  filmInput.value = "";
  filmInput.hidden = true;
  filmInput.disabled = true;
  showNotice(null);
  input.focus();
}

function clearFilm() {
  film = null;
  chosen.value = "";
  chosen.disabled = true;
  chip.hidden = true;
  filmInput.hidden = false;
  filmInput.disabled = false;
  filmInput.focus();
}

// A film typed but not yet chosen: choose it if it is known, else say so. False stops the question.
function resolveTypedFilm() {
  const typed = filmInput.disabled ? "" : filmInput.value.trim();
  if (!typed) return true;
  const title = matchTitle(typed);
  if (title) {
    setFilm(title);
    return true;
  }
  showNotice(`There is no film called “${typed}” in the reviews; pick one from the list or leave the film empty.`);
  filmInput.focus();
  return false;
}

filmInput.addEventListener("input", (event) => {
  // A pick from the list arrives as a replacement (or without an input type), not as typing.
  if (!event.inputType || event.inputType === "insertReplacementText") {
    const title = matchTitle(filmInput.value);
    if (title) setFilm(title);
  }
});
filmInput.addEventListener("change", () => {
  const title = matchTitle(filmInput.value);
  if (title) setFilm(title);
});
filmInput.addEventListener("keydown", (event) => {
  if (event.key === "Enter") {
    event.preventDefault();
    if (filmInput.value.trim()) resolveTypedFilm();
    else input.focus();
  }
});
removeFilm.addEventListener("click", (event) => {
  event.preventDefault();
  clearFilm();
});

async function loadFilms() {
  try {
    const res = await fetch("/films", { headers: { Accept: "application/json" } });
    if (!res.ok) return;
    titles = (await res.json()).map((f) => f.title);
    datalist.replaceChildren(...titles.map((t) => {
      const option = document.createElement("option");
      option.value = t;
      return option;
    }));
  } catch { /* the server-rendered list stays */ }
}

// ----- the composer -----------------------------------------------------------------------------

function autoresize() {
  input.style.height = "auto";
  input.style.height = `${Math.min(input.scrollHeight, 160)}px`;
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  if (event.submitter === removeFilm) return;
  ask(input.value);
});

input.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    ask(input.value);
  }
});
input.addEventListener("input", autoresize);

for (const button of document.querySelectorAll(".suggestion")) {
  button.addEventListener("click", (event) => {
    event.preventDefault();
    input.focus();
    ask(button.dataset.question || "");
  });
}

// Earlier turns rendered by the server (after a no-JS post) carry on as history.
for (const field of form.querySelectorAll("input[name=turn]")) {
  try {
    const turn = JSON.parse(field.value);
    history.push({ question: turn.question, answer: turn.answer ?? null, film: turn.film ?? null });
  } catch { /* ignore a damaged field */ }
}
for (const block of document.querySelectorAll(".passage")) addExpander(block);

const hint = $("hint");
hint.replaceChildren(el("kbd", null, "Enter"), " to ask · ", el("kbd", null, "Shift"), "+",
  el("kbd", null, "Enter"), " for a new line · answers come only from the indexed reviews");
document.documentElement.classList.add("js");
autoresize();
loadFilms();
