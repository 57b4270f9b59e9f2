/*
 * CrowdFab in OctoPrint's UI: the navbar's link indicator, the "Fablab" tab (fleet link, fleet job,
 * pending community job, sending a file to the fleet's queue), a "Send to fablab queue" action on every
 * file of OctoPrint's file list with its dialog, and the plugin's settings page. One view model serves
 * them all, so the file is longer than the others: they share one status poll and one set of
 * permissions. What the link's states mean, and the wizard, are in crowdfab_link.js.
 */
$(function () {
    "use strict";

    var PLUGIN = "crowdfab";
    var TAB = "#tab_plugin_crowdfab";
    var DIALOG = "#crowdfab_send_dialog";
    var FILE_TEMPLATE = "#files_template_machinecode";
    var FILE_ACTION_CLASS = "crowdfab-file-send";
    var CAN_QUEUE_CLASS = "crowdfab-can-queue";
    // Where earlier versions remembered a pasted token in the browser; now only ever cleared.
    var TOKEN_KEY = "plugin.crowdfab.memberToken";
    var POLL_VISIBLE_MS = 3000;
    var POLL_HIDDEN_MS = 15000;
    var FINISHED = ["done", "failed", "cancelled"];

    function CrowdFabViewModel(parameters) {
        var self = this;

        self.loginState = parameters[0];
        self.access = parameters[1];
        self.settings = parameters[2];

        // -- status of the link ------------------------------------------------------------------

        self.link = ko.observable("");
        self.error = ko.observable("");
        self.status = ko.observable({});
        self.printerId = ko.observable("");
        self.job = ko.observable(null);
        self.offer = ko.observable(null);
        self.requestFailed = ko.observable(false);
        // Waiting jobs no printer of the fleet can take, this one included: the fleet's reason each.
        self.unfit = ko.observableArray([]);
        self.answering = ko.observable(false);
        self.now = ko.observable(Date.now() / 1000);

        var LINK_TEXT = {
            "not enrolled": gettext("not enrolled"),
            enrolling: gettext("enrolling"),
            connecting: gettext("connecting"),
            online: gettext("online"),
            offline: gettext("offline"),
            broken: gettext("broken"),
            unreachable: gettext("fleet unreachable"),
            refused: gettext("refused"),
            starting: gettext("starting")
        };
        // The navbar's four words (and "not set up" before there is anything to try).
        var NAVBAR = {
            online: ["joined", "label-success"],
            enrolling: ["connecting", "label-warning"],
            connecting: ["connecting", "label-warning"],
            starting: ["connecting", "label-warning"],
            offline: ["offline", "label-important"],
            unreachable: ["offline", "label-important"],
            refused: ["refused", "label-important"],
            broken: ["refused", "label-important"],
            "not enrolled": ["not set up", ""]
        };
        var NAVBAR_TEXT = {
            joined: gettext("joined"),
            connecting: gettext("connecting"),
            offline: gettext("offline"),
            refused: gettext("refused"),
            "not set up": gettext("not set up")
        };
        var PHASE_TEXT = {
            printing: gettext("printing"),
            paused: gettext("paused"),
            done: gettext("done"),
            failed: gettext("failed"),
            cancelled: gettext("cancelled")
        };

        self.linkText = ko.pureComputed(function () {
            var link = self.link();
            return link ? LINK_TEXT[link] || link : gettext("unknown");
        });
        self.linkClass = ko.pureComputed(function () {
            switch (self.link()) {
                case "online":
                    return "label-success";
                case "offline":
                case "broken":
                case "unreachable":
                case "refused":
                    return "label-important";
                case "enrolling":
                case "connecting":
                    return "label-warning";
                default:
                    return "";
            }
        });
        // The owner's lending terms that did not parse: the printer is lent never until they are fixed.
        self.lendingError = ko.pureComputed(function () {
            var status = self.status();
            return window.CrowdFabLink.lendingProblemText(status.lending_problem) || status.lending_error || "";
        });
        // The owner's terms when they are valid, and whether they lend the printer now, in the page's language.
        self.lending = ko.pureComputed(function () {
            return self.status().lending || null;
        });
        // Why the last photo of the plate did not reach the fleet (a webcam login refused, say).
        self.plateProblem = ko.pureComputed(function () {
            var problem = self.status().plate_problem;
            return problem ? window.CrowdFabLink.plateProblemText(problem) : "";
        });
        self.lendingTerms = ko.pureComputed(function () {
            var terms = self.lending();
            return terms ? window.CrowdFabLink.termsText(terms) : "";
        });
        self.lendingNow = ko.pureComputed(function () {
            var terms = self.lending();
            return terms ? window.CrowdFabLink.lentNowText(terms) : "";
        });

        self.unfitHeading = ko.pureComputed(function () {
            var count = self.unfit().length;
            if (count === 1) return gettext("1 job in the fleet's queue does not fit this printer, nor any other:");
            return _.sprintf(gettext("%(count)d jobs in the fleet's queue do not fit this printer, nor any other:"), {
                count: count
            });
        });
        // One line per distinct reason (worded here from the fleet's key, so in the page's language), with how
        // many jobs give it when more than one.
        self.unfitReasons = ko.pureComputed(function () {
            var counts = _.countBy(self.unfit(), window.CrowdFabLink.unfitText);
            return _.map(_.keys(counts), function (reason) {
                if (counts[reason] === 1) return reason;
                return _.sprintf(gettext("%(count)d jobs: %(reason)s"), {count: counts[reason], reason: reason});
            });
        });

        self.problemText = ko.pureComputed(function () {
            return window.CrowdFabLink.problemText(self.status());
        });
        function navbarEntry() {
            return NAVBAR[self.link()] || ["connecting", "label-warning"];
        }
        self.navbarText = ko.pureComputed(function () {
            return NAVBAR_TEXT[navbarEntry()[0]];
        });
        self.navbarClass = ko.pureComputed(function () {
            return navbarEntry()[1];
        });
        // The fleet's own words on hover: what it answered last, else what the link is.
        self.navbarTitle = ko.pureComputed(function () {
            var parts = [_.sprintf(gettext("Community fleet: %(state)s"), {state: self.linkText()})];
            if (self.problemText()) parts.push(self.problemText());
            if (self.status().error) parts.push(self.status().error); // the fleet's own words, always
            return parts.join("\n");
        });
        self.showLinkDetails = function () {
            new PNotify({
                title: _.sprintf(gettext("Community fleet: %(state)s"), {state: _.escape(self.linkText())}),
                text: [self.problemText(), self.status().error].filter(Boolean).map(_.escape).join("<br>") ||
                    _.escape(self.printerId() ? _.sprintf(gettext("Joined as %(id)s."), {id: self.printerId()}) : ""),
                type: self.navbarClass() === "label-important" ? "error" : "info"
            });
            $("#tab_plugin_crowdfab_link a").tab("show");
            return false;
        };
        self.phaseText = function (phase) {
            return PHASE_TEXT[phase] || phase;
        };
        self.bedToClear = ko.pureComputed(function () {
            var job = self.job();
            return !!job && FINISHED.indexOf(job.phase) >= 0;
        });
        self.offerSecondsLeft = ko.pureComputed(function () {
            var offer = self.offer();
            if (!offer || !offer.deadline) return null;
            return Math.max(0, Math.round(offer.deadline - self.now()));
        });
        self.formatSize = function (bytes) {
            return formatSize(bytes);
        };
        self.formatDuration = function (seconds) {
            return formatDuration(seconds);
        };

        // -- permissions -------------------------------------------------------------------------

        function can(key) {
            var permission = self.access.permissions[key];
            return !!permission && self.loginState.hasPermission(permission);
        }
        self.isAdmin = ko.pureComputed(function () {
            self.loginState.currentUser(); // re-evaluate on login and logout
            return self.loginState.isUser() && can("PLUGIN_CROWDFAB_ADMIN");
        });
        self.canQueue = ko.pureComputed(function () {
            self.loginState.currentUser();
            return self.loginState.isUser() && can("PLUGIN_CROWDFAB_QUEUE");
        });
        self.canSee = function () {
            return self.isAdmin() || self.canQueue();
        };

        // -- polling -----------------------------------------------------------------------------

        var pollTimer = null;
        var clockTimer = null;
        var polling = false;
        var tabVisible = false;

        self.schedule = function () {
            if (pollTimer !== null) clearTimeout(pollTimer);
            pollTimer = null;
            if (!self.canSee()) return;
            pollTimer = setTimeout(self.requestStatus, tabVisible ? POLL_VISIBLE_MS : POLL_HIDDEN_MS);
        };

        self.requestStatus = function () {
            if (polling || !self.canSee()) return;
            polling = true;
            OctoPrint.simpleApiGet(PLUGIN)
                .done(function (status) {
                    self.requestFailed(false);
                    self.fromStatus(status);
                })
                .fail(function () {
                    self.requestFailed(true);
                })
                .always(function () {
                    polling = false;
                    self.schedule();
                });
        };

        self.fromStatus = function (status) {
            self.status(status);
            self.link(status.link || "");
            self.error(window.CrowdFabLink.errorDetails(status));
            if (status.printer_id && status.printer_id !== self.printerId() && tabVisible) {
                self.printerId(status.printer_id);
                self.loadSpools();
            }
            self.printerId(status.printer_id || "");
            if (status.signed_in !== undefined) self.signedIn(!!status.signed_in);
            self.job(status.job || null);
            self.offer(status.pending_offer || null);
            self.unfit(status.unfit || []);
            self.now(Date.now() / 1000);
            if (status.pending_offer && clockTimer === null) {
                clockTimer = setInterval(function () {
                    self.now(Date.now() / 1000);
                }, 1000);
            } else if (!status.pending_offer && clockTimer !== null) {
                clearInterval(clockTimer);
                clockTimer = null;
            }
            self.notify(status);
        };

        // -- notifications -----------------------------------------------------------------------

        var seen = null; // what the first status showed; later changes are news
        var notifiedOffer = null;
        var notifiedClear = null;

        self.notify = function (status) {
            var job = status.job;
            var offer = status.pending_offer;
            if (seen === null) {
                seen = {job: job ? job.job_id : null};
            } else if (job && job.job_id !== seen.job && FINISHED.indexOf(job.phase) < 0) {
                new PNotify({
                    title: gettext("A fleet job arrived"),
                    text: _.sprintf(gettext("Job #%(id)s (%(path)s) is printing on this printer."), {
                        id: _.escape(job.job_id),
                        path: _.escape(job.path)
                    }),
                    type: "info"
                });
            }
            seen.job = job ? job.job_id : null;

            if (offer && offer.job_id !== notifiedOffer) {
                notifiedOffer = offer.job_id;
                new PNotify({
                    title: gettext("A community job is waiting"),
                    text: _.sprintf(
                        self.isAdmin()
                            ? gettext("%(file)s: accept or decline it in the Fablab tab.")
                            : gettext("%(file)s is waiting for an administrator's answer."),
                        {file: _.escape(offer.filename)}
                    ),
                    type: "info",
                    hide: false
                });
            }
            if (job && FINISHED.indexOf(job.phase) >= 0 && job.job_id !== notifiedClear) {
                notifiedClear = job.job_id;
                new PNotify({
                    title: gettext("Clear the bed"),
                    text: _.sprintf(
                        gettext("Fleet job #%(id)s is over: remove its print from the bed."),
                        {id: _.escape(job.job_id)}
                    ),
                    type: "notice",
                    hide: false
                });
            }
        };

        // -- accept / decline --------------------------------------------------------------------

        function answer(command) {
            if (!self.isAdmin()) return;
            self.answering(true);
            OctoPrint.simpleApiCommand(PLUGIN, command, {})
                .fail(function (xhr) {
                    new PNotify({
                        title: gettext("The fleet job could not be answered"),
                        text: _.escape(errorOf(xhr)),
                        type: "error"
                    });
                })
                .always(function () {
                    self.answering(false);
                    self.requestStatus();
                });
        }
        self.accept = function () {
            answer("accept");
        };
        self.decline = function () {
            answer("decline");
        };

        // -- the spool on this printer (its owner loads and unloads it) ------------------------

        self.spoolLoaded = ko.observable(null);
        self.spoolShelf = ko.observableArray([]);
        self.spoolChoice = ko.observable(null);
        self.spoolError = ko.observable("");
        self.spoolBusy = ko.observable(false);
        self.spoolLabel = ko.pureComputed(function () {
            var spool = self.spoolLoaded();
            if (!spool) return "";
            return _.sprintf(gettext("%(colour)s %(material)s, %(left)s g left of %(net)s g"), {
                colour: spool.colour_name,
                material: spool.material,
                left: Math.round(spool.remaining_grams),
                net: Math.round(spool.net_grams)
            });
        });
        self.shelfText = function (spool) {
            return _.sprintf(gettext("#%(id)s %(colour)s %(material)s (%(left)s g, shelf %(shelf)s)"), {
                id: spool.id,
                colour: spool.colour_name,
                material: spool.material,
                left: Math.round(spool.remaining_grams),
                shelf: spool.shelf || "–"
            });
        };

        function spoolCall(command, payload) {
            self.spoolBusy(true);
            return OctoPrint.simpleApiCommand(PLUGIN, command, payload || {})
                .done(function (answer) {
                    self.spoolError("");
                    self.spoolLoaded(answer.loaded || null);
                    self.spoolShelf(answer.shelf || []);
                })
                .fail(function (xhr) {
                    self.spoolError(errorOf(xhr));
                })
                .always(function () {
                    self.spoolBusy(false);
                });
        }
        self.loadSpools = function () {
            if (!self.printerId() || !self.canSee()) return;
            spoolCall("spools");
        };
        self.loadSpool = function () {
            if (!self.isAdmin() || !self.spoolChoice()) return;
            spoolCall("load_spool", {spool_id: self.spoolChoice()});
        };
        self.unloadSpool = function () {
            if (!self.isAdmin()) return;
            spoolCall("unload_spool");
        };

        function errorOf(xhr) {
            if (xhr && xhr.responseJSON && xhr.responseJSON.error) return xhr.responseJSON.error;
            if (xhr && xhr.status) return xhr.status + " " + (xhr.statusText || "");
            return gettext("no answer");
        }

        // -- sending a file to the fleet's queue --------------------------------------------------

        self.files = ko.observableArray([]);
        self.chooseCaption = gettext("Choose a file");
        self.queuePath = ko.observable();
        self.queueMaterial = ko.observable("");
        self.queueCopies = ko.observable(1);
        self.queueToken = ko.observable("");
        self.queueResult = ko.observable("");
        // Whether this OctoPrint user holds a fleet token on the server; the token never comes here.
        self.signedIn = ko.observable(false);
        self.signInName = ko.observable("");
        self.signInPassword = ko.observable("");
        self.signInCode = ko.observable("");
        self.signInError = ko.observable("");
        self.signingIn = ko.observable(false);
        self.canSignIn = ko.pureComputed(function () {
            return !self.signingIn() && ((!!self.signInName() && !!self.signInPassword()) || !!self.signInCode());
        });
        self.signIn = function () {
            if (!self.canSignIn()) return;
            var payload = self.signInCode() ? {link_code: self.signInCode()}
                : {name: self.signInName(), password: self.signInPassword()};
            self.signingIn(true);
            self.signInError("");
            OctoPrint.simpleApiCommand(PLUGIN, "sign_in", payload)
                .done(function () {
                    self.signedIn(true);
                    self.queueError("");
                })
                .fail(function (xhr) {
                    self.signInError(gettext("Could not sign in:") + " " + errorOf(xhr));
                })
                .always(function () {
                    self.signingIn(false);
                    self.signInPassword("");
                    self.signInCode("");
                });
        };
        self.signOut = function () {
            OctoPrint.simpleApiCommand(PLUGIN, "sign_out", {}).done(function () {
                self.signedIn(false);
            });
        };
        self.queueError = ko.observable("");
        self.sending = ko.observable(false);
        // A whole number from 1 to 50, or null: the plugin refuses anything else.
        function wholeCopies(value) {
            var text = String(value).trim();
            if (!/^[0-9]+$/.test(text)) return null;
            var copies = parseInt(text, 10);
            return copies >= 1 && copies <= 50 ? copies : null;
        }
        self.copiesValue = ko.pureComputed(function () {
            return wholeCopies(self.queueCopies());
        });
        self.canSend = ko.pureComputed(function () {
            return !self.sending() && !!self.queuePath() && (self.signedIn() || !!self.queueToken()) &&
                self.copiesValue() !== null;
        });

        // A member signs in instead (the token stays on the server): forget what older versions kept here.
        try {
            if (window.localStorage) window.localStorage.removeItem(TOKEN_KEY);
        } catch (ignored) {
            // storage disabled: nothing was kept either
        }

        function machineCodeFiles(entries, into) {
            _.each(entries || [], function (entry) {
                if (entry.type === "folder") {
                    machineCodeFiles(entry.children, into);
                } else if (entry.type === "machinecode") {
                    into.push({path: entry.path, display: entry.path});
                }
            });
            return into;
        }

        self.loadFiles = function () {
            if (!self.canQueue()) return;
            OctoPrint.files.listForLocation("local", true).done(function (answer) {
                var files = machineCodeFiles(answer.files, []);
                files.sort(function (a, b) {
                    return a.path.localeCompare(b.path);
                });
                self.files(files);
            });
        };

        // Sends one file through the plugin's queue_file command; `done(text)` or `failed(text)` report back.
        function sendToQueue(path, copies, material, done, failed) {
            var payload = {path: path, copies: copies};
            // Signed in: the plugin sends with this user's token, kept on the server. Else a pasted token.
            if (!self.signedIn()) {
                payload.token = self.queueToken();
            }
            if (material) payload.material = material;
            self.sending(true);
            OctoPrint.simpleApiCommand(PLUGIN, "queue_file", payload)
                .done(function (answer) {
                    var jobs = (answer && answer.jobs) || [];
                    var text = _.map(jobs, function (job) {
                        return _.sprintf(gettext("job #%(id)s: %(state)s"), {id: job.id, state: job.state});
                    }).join(", ");
                    done(gettext("The fleet queued it.") + (text ? " " + text : ""));
                })
                .fail(function (xhr) {
                    if (xhr && xhr.responseJSON && xhr.responseJSON.signed_in === false) self.signedIn(false);
                    failed(gettext("The fleet refused it:") + " " + errorOf(xhr));
                })
                .always(function () {
                    self.sending(false);
                    self.queueToken("");
                });
        }

        self.queueFile = function () {
            if (!self.canSend()) return;
            self.queueResult("");
            self.queueError("");
            sendToQueue(self.queuePath(), self.copiesValue(), self.queueMaterial(), self.queueResult, self.queueError);
        };

        // -- the file list's "Send to fablab queue" action and its dialog -------------------------

        self.sendPath = ko.observable("");
        self.sendCopies = ko.observable(1);
        self.sendMaterial = ko.observable("");
        self.sendError = ko.observable("");
        self.sendCopiesValue = ko.pureComputed(function () {
            return wholeCopies(self.sendCopies());
        });
        self.canSendFromDialog = ko.pureComputed(function () {
            return !self.sending() && !!self.sendPath() && (self.signedIn() || !!self.queueToken()) &&
                self.sendCopiesValue() !== null;
        });

        // OctoPrint's file list has no extension point for per-file actions: its entries are rendered from the
        // knockout template FILE_TEMPLATE, so the action is added to that template's action buttons once, before
        // the list is bound. Clicks are handled here, by delegation, with the entry knockout bound to the button.
        self.addFileAction = function () {
            var template = $(FILE_TEMPLATE);
            if (!template.length) return false;
            var parsed = $("<div></div>").html(template.text());
            var buttons = parsed.find(".action-buttons").first();
            if (!buttons.length) {
                if (window.console) {
                    console.warn("CrowdFab: OctoPrint's file list has no action buttons; queue files from the Fablab tab");
                }
                return false;
            }
            if (buttons.find("." + FILE_ACTION_CLASS).length) return true;
            var label = _.escape(gettext("Send to fablab queue"));
            buttons.append(
                '<div class="btn btn-mini ' + FILE_ACTION_CLASS + '" role="button" tabindex="0"' +
                    ' data-test-id="crowdfab-file-send" title="' + label + '" aria-label="' + label + '"' +
                    " data-bind=\"visible: origin === 'local'\"><i class=\"fas fa-share-square\"></i></div>"
            );
            template.text(parsed.html());
            return true;
        };

        self.openSendDialog = function (entry) {
            if (!self.canQueue() || !entry || entry.origin !== "local") return;
            self.sendPath(entry.path);
            self.sendCopies(1);
            self.sendMaterial("");
            self.sendError("");
            $(DIALOG).modal("show");
        };

        self.sendFromDialog = function () {
            if (!self.canSendFromDialog()) return;
            self.sendError("");
            sendToQueue(
                self.sendPath(),
                self.sendCopiesValue(),
                self.sendMaterial(),
                function (text) {
                    $(DIALOG).modal("hide");
                    new PNotify({title: gettext("Sent to the fablab queue"), text: _.escape(text), type: "success"});
                },
                self.sendError
            );
        };

        $(document).on("click keydown", "." + FILE_ACTION_CLASS, function (event) {
            if (event.type === "keydown" && event.key !== "Enter" && event.key !== " ") return;
            event.preventDefault();
            self.openSendDialog(ko.dataFor(this));
        });
        self.canQueue.subscribe(function (allowed) {
            $("body").toggleClass(CAN_QUEUE_CLASS, !!allowed);
        });
        $(DIALOG).on("shown", function () {
            $("#crowdfab-send-copies").trigger("focus");
        });

        // -- settings ----------------------------------------------------------------------------

        self.newEnrollCode = ko.observable("");
        self.enrolling = ko.observable(false);
        self.enrollMessage = ko.observable("");

        function plugin() {
            return self.settings.settings.plugins.crowdfab;
        }
        self.acceptMode = ko.pureComputed({
            read: function () {
                return plugin().auto_accept() ? "auto" : "ask";
            },
            write: function (mode) {
                plugin().auto_accept(mode === "auto");
            }
        });

        self.enroll = function () {
            if (!self.isAdmin()) return;
            var payload = {fleet_url: plugin().fleet_url()};
            if (self.newEnrollCode()) payload.enroll_code = self.newEnrollCode();
            self.enrolling(true);
            self.enrollMessage("");
            OctoPrint.simpleApiCommand(PLUGIN, "enroll", payload)
                .done(function () {
                    self.newEnrollCode("");
                    self.enrollMessage(gettext("Enrolling; the Fablab tab shows how it goes."));
                    self.requestStatus();
                })
                .fail(function (xhr) {
                    self.enrollMessage(errorOf(xhr));
                })
                .always(function () {
                    self.enrolling(false);
                });
        };

        self.onSettingsShown = function () {
            self.newEnrollCode("");
            self.enrollMessage("");
            self.requestStatus();
        };
        self.onSettingsBeforeSave = function () {
            var settings = plugin();
            if (self.newEnrollCode()) {
                settings.enroll_code(self.newEnrollCode());
                self.newEnrollCode("");
            }
            var timeout = parseFloat(settings.accept_timeout_s());
            if (!isNaN(timeout)) settings.accept_timeout_s(timeout);
            var nozzle = parseFloat(settings.nozzle_diameter());
            settings.nozzle_diameter(isNaN(nozzle) ? null : nozzle);
        };

        // -- life cycle --------------------------------------------------------------------------

        self.onBeforeBinding = function () {
            self.addFileAction();
            $("body").toggleClass(CAN_QUEUE_CLASS, !!self.canQueue());
        };
        self.onStartupComplete = self.onUserLoggedIn = function () {
            self.requestStatus();
            if (tabVisible) {
                self.loadFiles();
                self.loadSpools();
            }
        };
        self.onUserLoggedOut = function () {
            if (pollTimer !== null) clearTimeout(pollTimer);
            pollTimer = null;
            seen = null;
        };
        self.onTabChange = function (current) {
            tabVisible = current === TAB;
            if (tabVisible) {
                self.requestStatus();
                self.loadFiles();
                self.loadSpools();
            }
        };
        self.onEventUpdatedFiles = function () {
            if (tabVisible) self.loadFiles();
        };
    }

    OCTOPRINT_VIEWMODELS.push({
        construct: CrowdFabViewModel,
        dependencies: ["loginStateViewModel", "accessViewModel", "settingsViewModel"],
        elements: ["#navbar_plugin_crowdfab", "#tab_plugin_crowdfab", "#settings_plugin_crowdfab", DIALOG]
    });
});
