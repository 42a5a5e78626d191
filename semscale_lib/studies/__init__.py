"""The studies behind the notebooks, one module per paper claim; notebooks stay thin and call these.

=====================  =======================================================  ===========
module                 what                                                     notebook
=====================  =======================================================  ===========
``measure``            per-class semantic scales of a dataset (and the CLI)     00
``marginal_effect``    S′ of nested subsets, models trained on them (Sec. 3.3)  01
``correlation``        S, W, S′, N, E_n against per-class accuracy (Table 1)    02
``reweighting``        1/S weights and DSB against baselines (Sec. 4)           03, 04
``report``             all claims of a run beside the paper's numbers           05
``claims``             claim records (``claims.json``)                          all
``notebook``           output folders, figures, tables, version checks          all
=====================  =======================================================  ===========
"""
