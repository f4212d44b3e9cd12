function mlrFilter(kind){
  document.querySelectorAll('[data-kind]').forEach(function(el){
    el.style.display = (!kind || el.dataset.kind === kind) ? '' : 'none';});
  document.querySelectorAll('.js-plotly-plot').forEach(function(div){
    var vis = div.data.map(function(t){return (!kind || t.meta === kind) ? true : false;});
    Plotly.restyle(div, {visible: vis});});
}
