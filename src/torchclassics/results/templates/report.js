// The report's behaviour: tabs, per-experiment tables (sort, filter, tick, open), the overlay of the
// ticked runs' curves, the metric-vs-parameter scatter, the parameter diff, and the study plots.
// Text from runs reaches the page only as textContent, or escaped for Plotly (plotText).
(function () {
  'use strict';
  const data = JSON.parse(document.getElementById('report-data').textContent);
  const CONFIG = {displaylogo: false, responsive: true};
  const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f',
                  '#bcbd22', '#17becf'];

  // Plotly reads a few HTML tags in names and hover text; run texts must show as typed.
  function plotText(value) {
    return String(value).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  }
  function layout(extra) {
    return Object.assign({template: data.template, margin: {l: 60, r: 16, t: 16, b: 48}, hovermode: 'closest'}, extra);
  }
  function same(a, b) { return JSON.stringify(a) === JSON.stringify(b); }

  // plotly.js takes from a few hundred ms (basic bundle) to seconds (full) to run, and the first
  // screen needs no chart: it waits in a text/plain script until a chart is drawn, or the page
  // is idle after opening.
  // The Content-Security-Policy lists its hash, so it runs when inserted as a script.
  function plotly() {
    if (!window.Plotly) {
      performance.mark('plotly-start');
      const script = document.createElement('script');
      script.textContent = document.getElementById('plotly-js').textContent;
      document.head.appendChild(script);
      performance.mark('plotly-ready');
    }
    return window.Plotly;
  }

  // -- one experiment ------------------------------------------------------------------------
  function ExperimentView(section, info) {
    const table = section.querySelector('table.runs');
    const body = table.tBodies[0];
    const headers = Array.from(table.tHead.rows[0].cells);
    const rows = Array.from(body.rows);
    const byKey = new Map(rows.map(row => [row.dataset.key, row]));
    const text = new Map(rows.map(row => [row, row.textContent.toLowerCase()]));
    const ticked = [];  // keys, in the order they were ticked (their colour)
    const curvesDiv = section.querySelector('.chart.curves');
    const scatterDiv = section.querySelector('.chart.scatter');
    const control = name => section.querySelector(name);
    let drawn = false;

    // sorting: numbers by value, text in natural order; blanks last either way
    function sortKey(cell) {
      if (cell.dataset.v !== undefined) { return Number(cell.dataset.v); }
      const value = cell.textContent.trim();
      return value === '' ? null : value;
    }
    function compare(a, b) {
      if (typeof a === 'number' && typeof b === 'number') { return a - b; }
      return String(a).localeCompare(String(b), undefined, {numeric: true});
    }
    headers.forEach((th, index) => {
      if (index === 0) { return; }
      th.addEventListener('click', () => {
        const ascending = th.getAttribute('aria-sort') !== 'ascending';
        headers.forEach(h => h.removeAttribute('aria-sort'));
        th.setAttribute('aria-sort', ascending ? 'ascending' : 'descending');
        const keyed = rows.map(row => [sortKey(row.cells[index]), row]);
        keyed.sort((r, s) => {
          if (r[0] === null || s[0] === null) { return (r[0] === null) - (s[0] === null); }
          return ascending ? compare(r[0], s[0]) : compare(s[0], r[0]);
        });
        const order = document.createDocumentFragment();
        keyed.forEach(([, row]) => { order.appendChild(row); if (row.detail) { order.appendChild(row.detail); } });
        body.appendChild(order);
      });
    });

    // filtering by text and status
    const filter = control('.filter'), status = control('.status-filter'), shown = control('.shown');
    function applyFilter() {
      const query = filter.value.trim().toLowerCase(), wanted = status.value;
      let count = 0;
      rows.forEach(row => {
        const hide = (wanted !== '' && row.dataset.status !== wanted) || (query !== '' && !text.get(row).includes(query));
        row.hidden = hide;
        if (row.detail) { row.detail.hidden = hide; }
        count += hide ? 0 : 1;
      });
      shown.textContent = count + ' of ' + rows.length + ' runs shown';
      scheduleScatter();
    }
    filter.addEventListener('input', applyFilter);
    status.addEventListener('change', applyFilter);

    // a run's details and figures: cloned from its <template> when first opened
    function toggleDetail(row, open) {
      const button = row.querySelector('button.open');
      open = open === undefined ? button.getAttribute('aria-expanded') !== 'true' : open;
      if (open && !row.detail) {
        const detail = document.createElement('tr');
        const cell = detail.insertCell();
        detail.className = 'detail';
        cell.colSpan = row.cells.length;
        cell.appendChild(document.getElementById('detail-' + row.dataset.key).content.cloneNode(true));
        row.after(detail);
        row.detail = detail;
      }
      if (row.detail) { row.detail.hidden = !open || row.hidden; }
      button.setAttribute('aria-expanded', String(open));
    }
    rows.forEach(row => {
      row.querySelector('button.open').addEventListener('click', () => toggleDetail(row));
      row.querySelector('.pick input').addEventListener('change', event => tick(row.dataset.key, event.target.checked));
    });

    function tick(key, on) {
      const at = ticked.indexOf(key);
      if (on && at < 0) { ticked.push(key); }
      if (!on && at >= 0) { ticked.splice(at, 1); }
      const row = byKey.get(key);
      row.querySelector('.pick input').checked = on;
      row.classList.toggle('ticked', on);
      drawCurves();
      drawDiff();
      scheduleScatter();
    }
    control('.clear').addEventListener('click', () => ticked.slice().forEach(key => tick(key, false)));

    // the overlay: every chosen metric of every ticked run, train dotted, held-out solid
    function drawCurves() {
      const chosen = Array.from(section.querySelectorAll('.curve-metric:checked')).map(box => box.value);
      const traces = [];
      ticked.forEach((key, i) => {
        const run = info.runs[key];
        run.curves.filter(line => chosen.includes(line.metric)).forEach(line => traces.push({
          x: line.x, y: line.y, type: 'scatter', mode: line.x.length > 40 ? 'lines' : 'lines+markers',
          name: plotText(run.label + (line.tag ? ' ' + line.tag : '') + ' · ' + line.metric),
          line: {color: COLORS[i % COLORS.length], dash: info.held_out.includes(line.metric) ? 'solid' : 'dot'},
          marker: {size: 5}, meta: key,
        }));
      });
      curvesDiv.hidden = ticked.length === 0;
      control('.curves-hint').hidden = ticked.length > 0;
      if (ticked.length === 0) { return; }
      plotly().react(curvesDiv, traces, layout({
        xaxis: {title: {text: 'epoch'}},
        yaxis: {type: control('.log-y').checked ? 'log' : 'linear', title: {text: plotText(chosen.join(', '))}},
        legend: {orientation: 'h', y: -0.2},
      }), CONFIG);
    }
    section.querySelectorAll('.curve-metric').forEach(box => box.addEventListener('change', drawCurves));
    control('.log-y').addEventListener('change', drawCurves);

    // the parameters that differ among the ticked runs
    function drawDiff() {
      const target = control('.diff');
      target.textContent = '';
      if (ticked.length < 2) { return; }
      const runs = ticked.map(key => info.runs[key]);
      const keys = Array.from(new Set(runs.flatMap(run => Object.keys(run.params))));
      const differing = keys.filter(k => runs.some(run => !same(run.params[k], runs[0].params[k])));
      if (differing.length === 0) {
        const note = target.appendChild(document.createElement('p'));
        note.className = 'hint';
        note.textContent = 'The ticked runs have the same parameters.';
        return;
      }
      const diff = target.appendChild(document.createElement('table'));
      diff.className = 'param-diff';
      const head = diff.createTHead().insertRow();
      head.appendChild(document.createElement('th')).textContent = 'parameter';
      runs.forEach(run => { head.appendChild(document.createElement('th')).textContent = run.label; });
      const rowsOut = diff.createTBody();
      differing.forEach(k => {
        const row = rowsOut.insertRow();
        row.insertCell().textContent = k;
        runs.forEach(run => { row.insertCell().textContent = k in run.params ? JSON.stringify(run.params[k]) : ''; });
      });
    }

    // metric vs parameter, over the runs the filter shows; ticked runs ringed
    let pending = false;
    function scheduleScatter() {
      if (!drawn || !scatterDiv || pending) { return; }
      pending = true;
      requestAnimationFrame(() => { pending = false; drawScatter(); });
    }
    function drawScatter() {
      const x = control('.scatter-x').value, y = control('.scatter-y').value;
      const points = rows.filter(row => !row.hidden).map(row => [row.dataset.key, info.runs[row.dataset.key]])
        .filter(([, run]) => run.values[x] !== null && run.values[x] !== undefined && typeof run.values[y] === 'number');
      const trace = (subset, name, marker) => ({
        x: subset.map(([, run]) => typeof run.values[x] === 'object' ? JSON.stringify(run.values[x]) : run.values[x]),
        y: subset.map(([, run]) => run.values[y]), customdata: subset.map(([key]) => key),
        text: subset.map(([, run]) => plotText(run.label)), type: 'scatter', mode: 'markers', name: name, marker: marker,
        hovertemplate: '%{text}<br>' + plotText(x) + ' %{x}<br>' + plotText(y) + ' %{y}<extra></extra>',
      });
      plotly().react(scatterDiv, [
        trace(points, 'runs', {size: 8, color: '#1f77b4', opacity: 0.75}),
        trace(points.filter(([key]) => ticked.includes(key)), 'ticked', {size: 14, color: 'rgba(0,0,0,0)',
          line: {color: '#d62728', width: 2}}),
      ], layout({
        xaxis: {title: {text: plotText(x)}, type: control('.log-x').checked ? 'log' : '-'},
        yaxis: {title: {text: plotText(y)}}, showlegend: false,
      }), CONFIG);
    }
    ['.scatter-x', '.scatter-y', '.log-x'].forEach(name => control(name).addEventListener('change', scheduleScatter));
    const xSelect = control('.scatter-x');
    function defaultLogX() {  // learning rates and other ranges over two decades read better on a log axis
      const values = Object.values(info.runs).map(run => run.values[xSelect.value]);
      const numbers = values.filter(v => typeof v === 'number');
      control('.log-x').checked = numbers.length > 1 && numbers.length === values.length &&
        Math.min(...numbers) > 0 && Math.max(...numbers) / Math.min(...numbers) > 100;
    }
    xSelect.addEventListener('change', defaultLogX);

    this.show = function () {  // charts are drawn when their view is first shown (Plotly needs a size)
      if (drawn) { return; }
      drawn = true;
      if (scatterDiv) {
        defaultLogX();
        drawScatter();  // Plotly gives the div its .on() here
        scatterDiv.on('plotly_click', event => {
          const key = event.points[0].customdata;
          tick(key, !ticked.includes(key));
        });
      }
    };
    this.reveal = function (key) {  // a link to a run: show its row, open it, scroll to it
      const row = byKey.get(key);
      if (row.hidden) { filter.value = ''; status.value = ''; applyFilter(); }
      toggleDetail(row, true);
      row.scrollIntoView({block: 'center'});
    };
  }

  // -- views and links -----------------------------------------------------------------------
  const views = new Map();
  data.experiments.forEach(info => {
    views.set(info.view, new ExperimentView(document.getElementById(info.view), info));
  });
  data.studies.forEach(study => {
    let drawn = false;
    views.set(study.view, {show: function () {
      if (drawn) { return; }
      drawn = true;
      study.plots.forEach(plot => {
        const figure = plot.figure;
        plotly().newPlot(document.getElementById(plot.id), figure.data,
                       Object.assign({}, figure.layout, {template: data.template}), CONFIG);
      });
    }});
  });

  function show(viewId) {
    document.querySelectorAll('section.view').forEach(view => { view.hidden = view.id !== viewId; });
    document.querySelectorAll('nav.tabs a').forEach(tab => {
      tab.setAttribute('aria-selected', String(tab.dataset.view === viewId));
    });
    if (views.has(viewId)) { views.get(viewId).show(); }
  }
  function route() {
    const target = decodeURIComponent(location.hash.slice(1)) || 'overview';
    const element = document.getElementById(target);
    if (element && element.matches('section.view')) {
      show(target);
      window.scrollTo(0, 0);
    } else if (element && element.matches('tr.run-row')) {
      const section = element.closest('section.view');
      show(section.id);
      views.get(section.id).reveal(element.dataset.key);
    } else {
      show('overview');
    }
  }
  window.addEventListener('hashchange', route);
  route();
  performance.mark('report-ready');  // for tests and the benchmark: everything is wired
  // after the first screen is painted; a chart drawn earlier loads it itself
  window.addEventListener('load', () => setTimeout(plotly, 50));
})();
