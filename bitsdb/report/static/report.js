/* bitsdb report: hosts, job cards and timelines drawn from the JSON data block of this file.
   Evidence text is attacker-controlled: it is only ever inserted with textContent (never as
   markup), and text handed to plotly.js (which reads a few HTML-like tags in labels) is
   entity-escaped first. Nothing is fetched: the page works from a USB stick, offline. */
(function () {
  'use strict';

  var raw = JSON.parse(document.getElementById('bitsdb-data').textContent);
  var TABLE = raw.table, SHAPES = raw.shapes, LEVELS = raw.levels, HOSTS = raw.hosts;
  var RANK = {};
  LEVELS.forEach(function (level, i) { RANK[level] = i; });
  var COLORS = {none: '#8a949e', info: '#4c78a8', low: '#3f9c96', medium: '#d98b00', high: '#d9480f',
                critical: '#a1132e'};
  var HOSTS_PER_PAGE = 50, CARDS_PER_STEP = 100, ROWS_PER_CHART = 150, FLEET_ROWS = 40;

  // ------------------------------------------------------------------ data
  // Every distinct value is stored once in TABLE (see render.py, _Packer); values are shared, read-only.
  var memo = new Array(TABLE.length);
  function value(ref) {
    if (ref === null || typeof ref === 'boolean') { return ref; }
    var v = memo[ref];
    if (v !== undefined) { return v; }
    var entry = TABLE[ref];
    if (typeof entry === 'string') {
      v = entry;
    } else if (entry.length && typeof entry[0] === 'number' && entry[0] < 0) {
      var keys = SHAPES[-entry[0] - 1];
      v = {};
      for (var i = 0; i < keys.length; i++) { v[keys[i]] = value(entry[i + 1]); }
    } else {
      v = entry.map(value);
    }
    memo[ref] = v;
    return v;
  }
  function job(i) { return value(raw.jobs[i]); }

  var haystacks = null;
  function haystack(i) {
    if (!haystacks) { haystacks = new Array(raw.jobs.length); }
    var h = haystacks[i];
    if (h === undefined) {
      var j = job(i), parts = [j.host, j.job_id, j.name, j.description, j.creator, j.severity, j.state, j.type,
                               j.owner.sid, j.owner.name];
      if (j.notify) { parts.push(j.notify.program, j.notify.parameters); }
      j.files.forEach(function (f) { parts.push(f.url, f.local, f.temp); });
      j.reasons.forEach(function (r) { parts.push(r); });
      j.hits.forEach(function (hit) { parts.push(hit.rule, hit.title); });
      if (j.history) {
        parts.push(j.history.owner_account, j.history.creator, j.history.computer);
        ['events', 'processes', 'notify_runs'].forEach(function (key) {
          j.history[key].forEach(function (line) { parts.push(line.text); });
        });
      }
      h = haystacks[i] = parts.filter(Boolean).join('\n').toLowerCase();
    }
    return h;
  }

  // ------------------------------------------------------------------ text helpers
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (key) {
        var value = attrs[key];
        if (value === null || value === undefined) { return; }
        if (key === 'text') { node.textContent = value; }
        else if (key === 'class') { node.className = value; }
        else { node.setAttribute(key, value); }
      });
    }
    (children || []).forEach(function (child) {
      if (child === null || child === undefined) { return; }
      node.appendChild(typeof child === 'string' ? document.createTextNode(child) : child);
    });
    return node;
  }
  function badge(level) { return el('span', {'class': 'badge lvl-' + level, text: level}); }
  function shortTime(iso) { return iso ? iso.slice(0, 10) + ' ' + iso.slice(11, 19) + 'Z' : '?'; }
  function timeNode(iso) {       // the 7-digit text is on hover
    return el('time', {datetime: iso, title: iso || '', text: shortTime(iso)});
  }
  function millis(iso) {         // ISO text with 7 fraction digits -> ms since the epoch (UTC)
    return Date.parse(iso.slice(0, 23) + 'Z');
  }
  function plotText(text) {      // plotly.js reads <b>, <a href> ... in labels: entities keep text text
    return String(text === null || text === undefined ? '' : text)
      .replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  }
  function clip(text, n) { text = text || ''; return text.length > n ? text.slice(0, n - 1) + '\u2026' : text; }

  // ------------------------------------------------------------------ filtering
  var state = {text: '', host: '', level: LEVELS[0], shown: 0, matches: []};

  function recordMatches(record, text, min) {
    if (RANK[record.severity] < min) { return false; }
    return !text || [record.text].concat(record.reasons).join('\n').toLowerCase().indexOf(text) >= 0;
  }

  function filter() {
    var text = state.text, host = state.host, min = RANK[state.level], matches = [], jobs = 0;
    HOSTS.forEach(function (h) {
      if (host && h.name.toLowerCase().indexOf(host) < 0) { return; }
      if (RANK[h.worst] < min) { return; }
      var hits = [];
      for (var i = h.first_job; i < h.first_job + h.job_count; i++) {
        if (RANK[job(i).severity] < min) { continue; }
        if (text && haystack(i).indexOf(text) < 0) { continue; }
        hits.push(i);
      }
      var records = h.records.filter(function (r) { return recordMatches(r, text, min); });
      if (hits.length || records.length) { matches.push({host: h, jobs: hits, records: records}); jobs += hits.length; }
    });
    state.matches = matches;
    document.getElementById('f-status').textContent =
      matches.length + ' of ' + HOSTS.length + ' hosts, ' + jobs + ' of ' + raw.jobs.length + ' jobs match';
    var list = document.getElementById('hosts');
    list.textContent = '';
    state.shown = 0;
    showMoreHosts();
    drawFleet();
  }

  function showMoreHosts() {
    var list = document.getElementById('hosts');
    var end = Math.min(state.matches.length, state.shown + HOSTS_PER_PAGE);
    for (var i = state.shown; i < end; i++) { list.appendChild(hostNode(state.matches[i], i === 0)); }
    state.shown = end;
    var more = document.getElementById('more-hosts');
    more.hidden = state.shown >= state.matches.length;
    more.textContent = 'Show more hosts (' + (state.matches.length - state.shown) + ' more)';
  }

  // ------------------------------------------------------------------ hosts
  function hostNode(match, open) {
    var h = match.host;
    var counts = LEVELS.slice().reverse().filter(function (l) { return h.counts[l]; })
      .map(function (l) { return h.counts[l] + ' ' + l; }).join(', ');
    var summary = el('summary', null, [
      badge(h.worst), el('span', {'class': 'hname', text: h.name}),
      el('span', {'class': 'counts', text: h.job_count + ' job(s): ' + counts +
        (match.jobs.length !== h.job_count ? ' \u2014 ' + match.jobs.length + ' match' : '') +
        (h.stores ? ' \u00b7 ' + h.stores + ' store(s)' : '') +
        (h.records.length ? ' \u00b7 ' + h.records.length + ' host record(s) from logs and hives' : '')}),
      el('span', {'class': 'span'}, ['BITS activity ', timeNode(h.first), ' \u2192 ', timeNode(h.last)])
    ]);
    var node = el('details', {'class': 'host lvl-' + h.worst, 'data-host': h.name, 'data-worst': h.worst},
                  [summary]);
    var body = null;
    node.addEventListener('toggle', function () {
      if (node.open && !body) {
        body = el('div', {'class': 'host-body'});
        node.appendChild(body);
        fillHost(body, match);
      }
    });
    if (open) { node.open = true; }
    return node;
  }

  function fillHost(body, match) {
    if (match.records.length) {
      body.appendChild(el('details', {'class': 'host-records', open: ''}, [
        el('summary', {text: match.records.length + ' record(s) of this host from event logs and hives (no job)'}),
        el('ul', null, match.records.map(function (r) {
          return el('li', {'class': r.notify ? 'notify-run' : null}, [
            badge(r.severity), ' ', timeNode(r.time), ' ', el('code', {text: r.text}),
            r.reasons.length ? el('ol', {'class': 'reasons'}, r.reasons.map(function (x) { return el('li', {text: x}); })) : null]);
        }))]));
    }
    var jobs = match.jobs.slice().sort(function (a, b) { return a - b; });   // worst first, as built
    if (!jobs.length) { return; }
    var chart = el('div', {'class': 'timeline chart'});
    body.appendChild(chart);
    var rows = jobs.slice(0, ROWS_PER_CHART);
    if (jobs.length > rows.length) {
      body.appendChild(el('p', {'class': 'timeline-note',
        text: 'Timeline shows the ' + rows.length + ' worst of ' + jobs.length + ' matching jobs.'}));
    }
    drawHostTimeline(chart, rows);
    var cards = el('div', {'class': 'cards'});
    body.appendChild(cards);
    var shown = 0;
    var more = el('button', {'class': 'more', type: 'button'});
    function step() {
      var end = Math.min(jobs.length, shown + CARDS_PER_STEP);
      for (var i = shown; i < end; i++) { cards.appendChild(card(job(jobs[i]))); }
      shown = end;
      more.hidden = shown >= jobs.length;
      more.textContent = 'Show more jobs (' + (jobs.length - shown) + ' more)';
    }
    more.addEventListener('click', step);
    body.appendChild(more);
    step();
  }

  // ------------------------------------------------------------------ job card
  function kvTable(pairs) {
    return el('table', {'class': 'kv'}, [el('tbody', null, pairs.map(function (p) {
      return el('tr', null, [el('td', {text: p[0]}), el('td', null, [el('code', {text: p[1]})])]);
    }))]);
  }

  function card(j) {
    var origins = j.origins.map(function (o) { return o === 'log' ? 'from event logs only' : o; });
    var meta = [j.type, j.state, origins.join(' + '), j.notify_ran ? 'notify command ran' : null]
      .filter(Boolean).join(' \u00b7 ');
    var node = el('article', {'class': 'job lvl-' + j.severity, 'data-severity': j.severity,
                              'data-job-id': j.job_id || ''}, [
      el('header', null, [badge(j.severity), el('span', {'class': 'jname', text: j.name === null ? '(no name)' : j.name}),
                          el('span', {'class': 'jmeta', text: meta}),
                          j.confidence ? el('span', {'class': 'jmeta', text: 'confidence: ' + j.confidence}) : null])
    ]);
    if (j.reasons.length) {
      node.appendChild(el('ol', {'class': 'reasons'}, j.reasons.map(function (r) { return el('li', {text: r}); })));
    }
    if (j.allowlist) { node.appendChild(el('p', {'class': 'jmeta', text: 'Allow-list: ' + j.allowlist})); }
    if (j.verdict_from) { node.appendChild(el('p', {'class': 'jmeta', text: 'Verdict from ' + j.verdict_from + '.'})); }
    var facts = el('dl');
    function fact(label, value) {
      if (value === null || value === undefined || value === '') { return; }
      facts.appendChild(el('dt', {text: label}));
      facts.appendChild(el('dd', null, [typeof value === 'string' ? el('code', {text: value}) : value]));
    }
    if (j.notify) {
      fact('notify command', el('span', null, [
        el('code', {'class': 'notify', text: [j.notify.program, j.notify.parameters].filter(Boolean).join('  ')}),
        j.notify.flags ? el('span', {'class': 'jmeta', text: '  on ' + j.notify.flags}) : null]));
    } else {
      fact('notify command', '(none)');
    }
    var history = j.history;
    if (history && history.notify_runs.length) {
      fact('notify command ran', el('div', null, history.notify_runs.map(function (line) {
        return el('div', {'class': 'notify-run'}, [timeNode(line.time), ' ', el('code', {text: line.text})]);
      })));
    }
    var owner = [j.owner.name, j.owner.sid ? '(' + j.owner.sid + ')' : null,
                 j.owner.integrity ? 'integrity ' + j.owner.integrity : null].filter(Boolean).join(' ');
    fact('owner', owner || '?');
    if (history && history.owner_account && history.owner_account !== j.owner.name) {
      fact('owner (event log)', history.owner_account);
    }
    fact('creator', j.creator);
    if (history && history.creator && history.creator !== j.creator) { fact('creator (event log)', history.creator); }
    if (history && history.creator_pid) { fact('creator process id', history.creator_pid); }
    if (history && history.computer) { fact('computer (event log)', history.computer); }
    fact('job id', j.job_id);
    fact('description', j.description);
    fact('priority', j.priority);
    if (j.errors.length) { fact('last error', j.errors.join(', ')); }
    if (j.partial) { fact('partial record', j.partial); }
    node.appendChild(facts);

    if (j.files.length) {
      var arrow = j.upload ? '\u2190' : '\u2192';
      node.appendChild(el('table', {'class': 'files'}, [
        el('thead', null, [el('tr', null, [el('th', {text: 'URL'}), el('th', {text: ''}),
                                          el('th', {text: 'local path'}), el('th', {text: 'bytes done / total'})])]),
        el('tbody', null, j.files.map(function (f) {
          return el('tr', null, [el('td', null, [el('code', {text: f.url || '?'})]),
                                 el('td', {'class': 'arrow', text: arrow}),
                                 el('td', null, [el('code', {text: f.local || '?'})]),
                                 el('td', {text: f.bytes})]);
        }))]));
    }
    if (j.missing_files.length) { node.appendChild(el('p', {'class': 'jmeta',
      text: 'File records missing from the Files table: ' + j.missing_files.join(', ')})); }

    var times = j.times.slice();
    j.files.forEach(function (f, i) { if (f.remote_modified) { times.push(['file ' + i + ' remote Last-Modified', f.remote_modified]); } });
    node.appendChild(el('details', {'class': 'times', open: ''}, [el('summary', {text: 'times (UTC, 7 digits)'}), kvTable(times)]));
    if (j.hits.length) {
      node.appendChild(el('details', null, [el('summary', {text: j.hits.length + ' rule hit(s)'}),
        el('ul', null, j.hits.map(function (hit) {
          return el('li', null, [badge(hit.severity), ' ', el('code', {text: hit.rule}),
            ' ' + (hit.facet ? '[' + hit.facet + '] ' : '') + hit.title +
            (hit.attack.length ? ' [' + hit.attack.join(', ') + ']' : '') +
            (hit.allowlisted ? ' (allow-listed: ' + hit.allowlisted + ')' : ''),
            hit.evidence.length ? el('div', null, [el('code', {text: hit.evidence.join('\n')})]) : null]);
        }))]));
    }
    if (history && (history.events.length || history.processes.length)) {
      var logLines = [];
      history.processes.forEach(function (line) { logLines.push(['command line', line]); });
      history.events.forEach(function (line) { logLines.push(['event', line]); });
      logLines.sort(function (a, b) { return (a[1].time || '') < (b[1].time || '') ? -1 : 1; });
      node.appendChild(el('details', history.log_only ? {open: ''} : null, [
        el('summary', {text: 'event-log history: ' + history.events.length + ' event(s), ' +
                             history.processes.length + ' command line(s)'}),
        el('ul', null, logLines.map(function (item) {
          return el('li', null, [timeNode(item[1].time), ' ', el('code', {text: item[1].text})]);
        }))]));
    }
    if (j.versions.length) {
      node.appendChild(el('details', null, [el('summary', {text: j.versions.length + ' other version(s) of this job'}),
        el('ul', null, j.versions.map(function (v) {
          return el('li', null, [badge(v.severity), ' ' + v.origin + ', ' + (v.state || '?') + ', modified ',
                                 el('code', {text: v.modified || '?'}), ' (' + (v.where || '?') + ')',
                                 kvTable(v.provenance)]);
        }))]));
    }
    node.appendChild(el('details', null, [el('summary', {text: 'provenance'}), kvTable(j.provenance)]));
    return node;
  }

  // ------------------------------------------------------------------ charts
  var PLOT_CONFIG = {displayModeBar: false, responsive: true, scrollZoom: false};
  var MARK_SYMBOLS = {'bits-job-created': 'circle', 'bits-job-version-recovered': 'diamond',
                      'bits-transfer-completed': 'square', 'bits-transfer-error': 'x',
                      'bits-job-modified': 'line-ns-open', 'bits-job-files-changed': 'line-ns-open',
                      'bits-job-inactivity-start': 'triangle-right', 'notify': 'star', 'log': 'triangle-up'};

  function drawHostTimeline(container, rows) {
    if (!rows.length) { return; }
    var barX = [], barBase = [], barY = [], barColor = [], barText = [];
    var marks = {};
    var labels = [];
    var low = Infinity, high = -Infinity;
    rows.forEach(function (i) {
      var j = job(i);
      if (j.start) { low = Math.min(low, millis(j.start)); }
      if (j.end) { high = Math.max(high, millis(j.end)); }
    });
    var minWidth = isFinite(high - low) ? Math.max((high - low) / 80, 1) : 1;   // a job of seconds stays visible
    rows.forEach(function (i, row) {
      var j = job(i);
      labels.push(plotText(clip(j.name === null ? '(no name)' : j.name, 40)));
      if (j.start && j.end) {
        var start = millis(j.start), end = millis(j.end);
        barBase.push(start); barX.push(Math.max(end - start, minWidth)); barY.push(row);
        barColor.push(COLORS[j.severity]);
        barText.push(plotText(j.name) + '<br>' + plotText(j.severity) + ' \u00b7 ' + plotText(j.end_state) +
                     '<br>' + plotText(j.start) + ' \u2192 ' + plotText(j.end));
      }
      j.marks.forEach(function (m) {
        var kind = m.notify ? 'notify' : (m.origin === 'log' ? 'log' : m.kind);
        var group = marks[kind] || (marks[kind] = {x: [], y: [], text: [], name: m.notify ? 'notify command ran' : m.label});
        group.x.push(millis(m.time)); group.y.push(row);
        group.text.push(plotText(m.label) + '<br>' + plotText(m.time) + (m.notify ? '<br>' + plotText(m.notify) : ''));
      });
    });
    var traces = [{type: 'bar', orientation: 'h', base: barBase, x: barX, y: barY, marker: {color: barColor},
                   hovertext: barText, hoverinfo: 'text', name: 'job (creation \u2192 last known time)',
                   width: 0.55, showlegend: false}];
    Object.keys(marks).sort().forEach(function (kind) {
      var g = marks[kind], notify = kind === 'notify';
      traces.push({type: 'scatter', mode: 'markers', x: g.x, y: g.y, hovertext: g.text, hoverinfo: 'text',
                   name: plotText(notify ? 'notify command ran' : kindName(kind)),
                   marker: {symbol: MARK_SYMBOLS[kind] || 'circle', size: notify ? 16 : 8,
                            color: notify ? '#a1132e' : '#1d2b3a', line: {width: 1, color: '#ffffff'}}});
    });
    var layout = {height: 100 + rows.length * 26, margin: {l: 260, r: 10, t: 36, b: 50},
                  xaxis: {type: 'date', title: {text: 'UTC', standoff: 6}},
                  yaxis: {tickvals: rows.map(function (_, r) { return r; }), ticktext: labels, autorange: 'reversed',
                          automargin: true},
                  legend: {orientation: 'h', y: 1.01, yanchor: 'bottom', x: 0}, bargap: 0.3, hovermode: 'closest'};
    Plotly.newPlot(container, traces, layout, PLOT_CONFIG);
  }

  var KIND_NAMES = {'bits-job-created': 'created', 'bits-job-modified': 'modified',
                    'bits-job-files-changed': 'files or progress changed',
                    'bits-job-version-recovered': 'recovered version', 'bits-transfer-completed': 'completed',
                    'bits-job-inactivity-start': 'inactivity timer started', 'bits-transfer-error': 'error',
                    'log': 'event log'};
  function kindName(kind) { return KIND_NAMES[kind] || kind; }

  function drawFleet() {
    var container = document.getElementById('fleet-chart');
    var shown = state.matches.slice(0, FLEET_ROWS);
    document.getElementById('fleet-note').textContent = shown.length < state.matches.length
      ? '(the ' + shown.length + ' worst of ' + state.matches.length + ' matching hosts)'
      : '(' + shown.length + ' host(s))';
    if (!shown.length) { Plotly.purge(container); container.textContent = ''; return; }
    var names = shown.map(function (m) { return plotText(clip(m.host.name, 40)); });
    var rows = shown.map(function (_, r) { return r; });
    var traces = LEVELS.slice().reverse().map(function (level) {
      return {type: 'bar', orientation: 'h', name: level, y: rows, xaxis: 'x', yaxis: 'y',
              x: shown.map(function (m) { return m.jobs.filter(function (i) { return job(i).severity === level; }).length; }),
              marker: {color: COLORS[level]}, hoverinfo: 'x+name'};
    });
    var withSpan = shown.filter(function (m) { return m.host.first && m.host.last; });
    traces.push({type: 'bar', orientation: 'h', xaxis: 'x2', yaxis: 'y', showlegend: false,
                 y: withSpan.map(function (m) { return shown.indexOf(m); }),
                 base: withSpan.map(function (m) { return millis(m.host.first); }),
                 x: withSpan.map(function (m) { return Math.max(millis(m.host.last) - millis(m.host.first), 1); }),
                 marker: {color: withSpan.map(function (m) { return COLORS[m.host.worst]; })},
                 hoverinfo: 'text', hovertext: withSpan.map(function (m) {
                   return plotText(m.host.name) + '<br>first ' + plotText(m.host.first) + '<br>last ' + plotText(m.host.last);
                 })});
    var layout = {barmode: 'stack', height: 110 + shown.length * 22, margin: {l: 200, r: 10, t: 30, b: 70},
                  xaxis: {domain: [0, 0.38], title: {text: 'jobs by verdict', standoff: 8}},
                  xaxis2: {domain: [0.45, 1], type: 'date', title: {text: 'first \u2192 last BITS activity (UTC)', standoff: 8}},
                  yaxis: {tickvals: rows, ticktext: names, autorange: 'reversed', automargin: true},
                  legend: {orientation: 'h', y: 1.02, yanchor: 'bottom', x: 0}, bargap: 0.25};
    Plotly.react(container, traces, layout, PLOT_CONFIG);
  }

  // ------------------------------------------------------------------ wiring
  var pending = null;
  function schedule() {
    if (pending) { clearTimeout(pending); }
    pending = setTimeout(function () {
      pending = null;
      state.text = document.getElementById('f-text').value.trim().toLowerCase();
      state.host = document.getElementById('f-host').value.trim().toLowerCase();
      state.level = document.getElementById('f-level').value;
      filter();
    }, 200);
  }
  document.getElementById('filters').addEventListener('submit', function (e) { e.preventDefault(); });
  ['f-text', 'f-host'].forEach(function (id) { document.getElementById(id).addEventListener('input', schedule); });
  document.getElementById('f-level').addEventListener('change', schedule);
  document.getElementById('more-hosts').addEventListener('click', showMoreHosts);
  var initial = (raw.overview.options || {}).min_severity;
  if (initial && RANK[initial] !== undefined) { state.level = document.getElementById('f-level').value = initial; }
  filter();
  document.body.setAttribute('data-ready', 'true');
}());
